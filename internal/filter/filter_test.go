package filter

import (
	"reflect"
	"testing"
)

func TestParseKV(t *testing.T) {
	kv, err := ParseKV("tag-meta", "spec=a=b")
	if err != nil || kv != (KV{Key: "spec", Value: "a=b"}) {
		t.Errorf("split at first '=': %+v, %v", kv, err)
	}
	kv, err = ParseKV("tag-meta", "k=")
	if err != nil || kv != (KV{Key: "k", Value: ""}) {
		t.Errorf("empty value allowed: %+v, %v", kv, err)
	}
	cases := map[string]string{
		"noequals": `--tag-meta: expected KEY=VALUE, got "noequals" (KEY must be non-empty)`,
		"=v":       `--tag-meta: expected KEY=VALUE, got "=v" (KEY must be non-empty)`,
		"":         `--tag-meta: expected KEY=VALUE, got "" (KEY must be non-empty)`,
	}
	for raw, want := range cases {
		if _, err := ParseKV("tag-meta", raw); err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %q", raw, err, want)
		}
	}
	if _, err := ParseKV("no-tag-meta", "x"); err == nil ||
		err.Error() != `--no-tag-meta: expected KEY=VALUE, got "x" (KEY must be non-empty)` {
		t.Errorf("flag name not used: %v", err)
	}
}

type decision struct {
	skip   bool
	reason string
}

func decide(o Options, meta map[string]any) decision {
	s, r := o.Decide(meta)
	return decision{s, r}
}

var run = decision{}

func TestDecideSkip(t *testing.T) {
	cases := []struct {
		val  any
		want decision
	}{
		{true, decision{true, "skipped (meta.skip)"}},
		{int64(2), decision{true, "skipped (meta.skip)"}},
		{int64(-1), decision{true, "skipped (meta.skip)"}},
		{"flaky on TCG", decision{true, "skipped: flaky on TCG"}},
		{false, run},
		{nil, run},
		{int64(0), run},
	}
	for _, c := range cases {
		if got := decide(Options{}, map[string]any{"skip": c.val}); got != c.want {
			t.Errorf("skip=%#v: got %+v, want %+v", c.val, got, c.want)
		}
	}
	if got := decide(Options{}, nil); got != run {
		t.Errorf("nil meta: %+v", got)
	}
}

func TestDecideSlow(t *testing.T) {
	const slow = "filtered: slow tests skipped (pass --include-slow)"
	for _, v := range []any{true, int64(1)} {
		if got := decide(Options{}, map[string]any{"slow": v}); got != (decision{true, slow}) {
			t.Errorf("slow=%#v: %+v", v, got)
		}
		if got := decide(Options{IncludeSlow: true}, map[string]any{"slow": v}); got != run {
			t.Errorf("slow=%#v with --include-slow: %+v", v, got)
		}
	}
	for _, v := range []any{false, int64(0), nil} {
		if got := decide(Options{}, map[string]any{"slow": v}); got != run {
			t.Errorf("slow=%#v: %+v", v, got)
		}
	}
}

func TestDecideTags(t *testing.T) {
	noTag := Options{NoTag: []string{"net", "dns"}}
	tag := Options{Tag: []string{"net", "dns"}}
	const noTagReason = `filtered: matched --no-tag (["net", "dns"])`
	const tagReason = `filtered: did not match --tag (["net", "dns"])`

	arr := map[string]any{"tags": []any{"disk", "dns"}}
	single := map[string]any{"tags": "net"}
	nonStrings := map[string]any{"tags": []any{int64(1), true, map[string]any{"net": true}}}
	none := map[string]any{}

	if got := decide(noTag, arr); got != (decision{true, noTagReason}) {
		t.Errorf("no-tag array: %+v", got)
	}
	if got := decide(noTag, single); got != (decision{true, noTagReason}) {
		t.Errorf("no-tag single string: %+v", got)
	}
	if got := decide(noTag, none); got != run {
		t.Errorf("no-tag untagged: %+v", got)
	}
	if got := decide(tag, arr); got != run {
		t.Errorf("tag array match: %+v", got)
	}
	if got := decide(tag, single); got != run {
		t.Errorf("tag single match: %+v", got)
	}
	if got := decide(tag, nonStrings); got != (decision{true, tagReason}) {
		t.Errorf("non-string tags are ignored: %+v", got)
	}
	if got := decide(tag, none); got != (decision{true, tagReason}) {
		t.Errorf("tag untagged: %+v", got)
	}
	// --no-tag wins over --tag.
	both := Options{Tag: []string{"dns"}, NoTag: []string{"disk"}}
	if got := decide(both, arr); got != (decision{true, `filtered: matched --no-tag (["disk"])`}) {
		t.Errorf("no-tag must win: %+v", got)
	}
	// Values are quoted like strings.
	q := Options{Tag: []string{`a"b`}}
	if got := decide(q, none); got.reason != `filtered: did not match --tag (["a\"b"])` {
		t.Errorf("quoting: %q", got.reason)
	}
}

func TestDecideNoTagMeta(t *testing.T) {
	o := Options{NoTagMeta: []KV{{"subsystems", "nbd"}, {"owner", "ann"}, {"subsystems", "net"}}}
	meta := map[string]any{"subsystems": []any{"net", "nbd"}, "owner": "ann"}
	// First matching pair in flag order.
	if got := decide(o, meta); got != (decision{true, "filtered: matched --no-tag-meta (subsystems=nbd)"}) {
		t.Errorf("got %+v", got)
	}
	if got := decide(o, map[string]any{"owner": "ann"}); got != (decision{true, "filtered: matched --no-tag-meta (owner=ann)"}) {
		t.Errorf("got %+v", got)
	}
	if got := decide(o, map[string]any{"owner": "bob"}); got != run {
		t.Errorf("got %+v", got)
	}
	// --no-tag-meta wins over --tag-meta.
	o.TagMeta = []KV{{"owner", "ann"}}
	if got := decide(o, map[string]any{"owner": "ann"}); !got.skip || got.reason != "filtered: matched --no-tag-meta (owner=ann)" {
		t.Errorf("no-tag-meta must win: %+v", got)
	}
}

func TestDecideTagMeta(t *testing.T) {
	// Same key ORs, different keys AND.
	o := Options{TagMeta: []KV{{"sub", "net"}, {"sub", "disk"}, {"area", "x"}}}
	reasonFor := func(k string) decision {
		return decision{true, "filtered: did not match any --tag-meta " + k + "=\u2026"}
	}
	if got := decide(o, map[string]any{"sub": "disk", "area": []any{"y", "x"}}); got != run {
		t.Errorf("all keys match: %+v", got)
	}
	// Both keys fail: the sorted-first key is named.
	if got := decide(o, map[string]any{}); got != reasonFor("area") {
		t.Errorf("got %+v", got)
	}
	if got := decide(o, map[string]any{"area": "x"}); got != reasonFor("sub") {
		t.Errorf("got %+v", got)
	}
	if got := decide(o, map[string]any{"area": "x"}).reason; got != "filtered: did not match any --tag-meta sub=…" {
		t.Errorf("ellipsis text %q", got)
	}
	// Booleans, numbers and maps never match.
	for _, v := range []any{true, int64(1), 1.0, map[string]any{"x": "x"}} {
		oo := Options{TagMeta: []KV{{"k", "true"}, {"k", "1"}, {"k", "x"}}}
		if got := decide(oo, map[string]any{"k": v}); got != reasonFor("k") {
			t.Errorf("k=%#v matched: %+v", v, got)
		}
	}
	// Non-string elements in an array are ignored, strings still match.
	oo := Options{TagMeta: []KV{{"k", "1"}}}
	if got := decide(oo, map[string]any{"k": []any{int64(1), "1"}}); got != run {
		t.Errorf("array with string: %+v", got)
	}
}

func TestDecideStageOrder(t *testing.T) {
	o := Options{Tag: []string{"a"}, NoTag: []string{"b"}, TagMeta: []KV{{"k", "v"}}, NoTagMeta: []KV{{"k", "w"}}}
	meta := map[string]any{"skip": "why", "slow": true, "tags": []any{"b"}, "k": "w"}
	steps := []struct {
		drop string
		want string
	}{
		{"", "skipped: why"},
		{"skip", "filtered: slow tests skipped (pass --include-slow)"},
		{"slow", `filtered: matched --no-tag (["b"])`},
		{"tags", `filtered: did not match --tag (["a"])`},
	}
	for _, s := range steps {
		delete(meta, s.drop)
		if got := decide(o, meta); got != (decision{true, s.want}) {
			t.Fatalf("after dropping %q: %+v, want %q", s.drop, got, s.want)
		}
	}
	meta["tags"] = "a"
	if got := decide(o, meta); got != (decision{true, "filtered: matched --no-tag-meta (k=w)"}) {
		t.Fatalf("got %+v", got)
	}
	meta["k"] = "z"
	if got := decide(o, meta); got != (decision{true, "filtered: did not match any --tag-meta k=…"}) {
		t.Fatalf("got %+v", got)
	}
	meta["k"] = "v"
	if got := decide(o, meta); got != run {
		t.Fatalf("got %+v", got)
	}
}

func TestEnvRoundTrip(t *testing.T) {
	empty := Options{}.EnvJSON()
	if want := `{"include_slow":false,"tag":[],"no_tag":[],"tag_meta":[],"no_tag_meta":[]}`; empty != want {
		t.Errorf("empty = %s\nwant    %s", empty, want)
	}
	o := Options{
		IncludeSlow: true,
		Tag:         []string{"net", "a&b"},
		NoTag:       []string{"slow<"},
		TagMeta:     []KV{{"k", "v=1"}},
		NoTagMeta:   []KV{{"x", ""}},
	}
	js := o.EnvJSON()
	want := `{"include_slow":true,"tag":["net","a&b"],"no_tag":["slow<"],"tag_meta":[{"key":"k","value":"v=1"}],"no_tag_meta":[{"key":"x","value":""}]}`
	if js != want {
		t.Errorf("json = %s\nwant   %s", js, want)
	}
	back, err := ParseEnv(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, o) {
		t.Errorf("round trip: %+v, want %+v", back, o)
	}
	if _, err := ParseEnv("{not json"); err == nil {
		t.Error("bad JSON accepted")
	}
	partial, err := ParseEnv(`{"tag":["x"]}`)
	if err != nil || !reflect.DeepEqual(partial, Options{Tag: []string{"x"}}) {
		t.Errorf("partial: %+v, %v", partial, err)
	}
}

func TestResolve(t *testing.T) {
	env := func(v string, ok bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k != EnvVar {
				return "", false
			}
			return v, ok
		}
	}
	flags := Options{Tag: []string{"flag"}}
	fromEnv := Options{Tag: []string{"env"}}.EnvJSON()

	got, err := Resolve(flags, true, env(fromEnv, true))
	if err != nil || !reflect.DeepEqual(got, flags) {
		t.Errorf("flag given must win: %+v, %v", got, err)
	}
	got, err = Resolve(Options{}, false, env(fromEnv, true))
	if err != nil || !reflect.DeepEqual(got.Tag, []string{"env"}) {
		t.Errorf("env must be used: %+v, %v", got, err)
	}
	got, err = Resolve(Options{}, false, env("", false))
	if err != nil || !reflect.DeepEqual(got, Options{}) {
		t.Errorf("unset env: %+v, %v", got, err)
	}
	if _, err := Resolve(Options{}, false, env("[", true)); err == nil {
		t.Error("bad env accepted")
	}
}
