package runner

import (
	"context"
	"testing"
)

func TestReplPrettyPrintsTables(t *testing.T) {
	in, err := NewInteractive(context.Background(), &Options{}, "repl")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cases := map[string]string{
		`{size = 12, perm = 420, entry_type = "file", nested = {a = {1, 2, "x"}}, [3] = true}`: "{\n  [3] = true,\n  entry_type = \"file\",\n  nested = {\n    a = { 1, 2, \"x\" },\n  },\n  perm = 420,\n  size = 12,\n}",
		`{}`:      "{}",
		`"plain"`: "plain",
		`1.5`:     "1.5",
		`setmetatable({}, {__tostring = function() return "short" end})`: "short",
	}
	for src, want := range cases {
		got, err := in.Eval(src, "repl")
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s:\n got %q\nwant %q", src, got, want)
		}
	}
	got, err := in.Eval(`(function() local t = {} t.self = t return t end)()`, "repl")
	if err != nil || len(got) != 1 || got[0][:len("{\n  self = <cycle table: ")] != "{\n  self = <cycle table: " {
		t.Errorf("cycle: %q %v", got, err)
	}
}
