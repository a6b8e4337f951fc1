package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tagsWant is tags.test.lua with the given skip reasons (by test name);
// the others pass.
func tagsWant(skips map[string]string) []fileWant {
	names := []string{"net test", "dns test", "untagged", "meta subsystems", "meta flaky bool", "meta flaky string"}
	fw := fileWant{path: "tags.test.lua"}
	for _, n := range names {
		if r, ok := skips[n]; ok {
			fw.tests = append(fw.tests, skipped(n, r))
		} else {
			fw.tests = append(fw.tests, pass(n))
		}
	}
	return []fileWant{fw}
}

func TestSelectionFlags(t *testing.T) {
	dir := suiteDir(t)
	const (
		noTagNet    = `filtered: matched --no-tag (["net"])`
		tagNet      = `filtered: did not match --tag (["net"])`
		tagNetDNS   = `filtered: did not match --tag (["net", "dns"])`
		tagMetaSubs = "filtered: did not match any --tag-meta subsystems=…"
		tagMetaFlak = "filtered: did not match any --tag-meta flaky=…"
	)
	cases := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"tag", []string{"--tag", "net"}, map[string]string{
			"dns test": tagNet, "untagged": tagNet, "meta subsystems": tagNet, "meta flaky bool": tagNet, "meta flaky string": tagNet}},
		{"tag repeated", []string{"--tag", "net", "--tag", "dns"}, map[string]string{
			"untagged": tagNetDNS, "meta subsystems": tagNetDNS, "meta flaky bool": tagNetDNS, "meta flaky string": tagNetDNS}},
		{"no-tag", []string{"--no-tag", "net"}, map[string]string{"net test": noTagNet}},
		{"no-tag wins", []string{"--tag", "net", "--no-tag", "net"}, map[string]string{
			"net test": noTagNet, "dns test": tagNet, "untagged": tagNet, "meta subsystems": tagNet, "meta flaky bool": tagNet, "meta flaky string": tagNet}},
		{"tag-meta array", []string{"--tag-meta", "subsystems=fs"}, map[string]string{
			"net test": tagMetaSubs, "dns test": tagMetaSubs, "untagged": tagMetaSubs, "meta flaky bool": tagMetaSubs, "meta flaky string": tagMetaSubs}},
		{"tag-meta string only", []string{"--tag-meta", "flaky=true"}, map[string]string{
			"net test": tagMetaFlak, "dns test": tagMetaFlak, "untagged": tagMetaFlak, "meta subsystems": tagMetaFlak, "meta flaky bool": tagMetaFlak}},
		{"tag-meta keys AND, first failing key sorted", []string{"--tag-meta", "subsystems=fs", "--tag-meta", "owner=bob"}, map[string]string{
			"net test": "filtered: did not match any --tag-meta owner=…", "dns test": "filtered: did not match any --tag-meta owner=…",
			"untagged": "filtered: did not match any --tag-meta owner=…", "meta subsystems": "filtered: did not match any --tag-meta owner=…",
			"meta flaky bool": "filtered: did not match any --tag-meta owner=…", "meta flaky string": "filtered: did not match any --tag-meta owner=…"}},
		{"tag-meta same key OR", []string{"--tag-meta", "owner=bob", "--tag-meta", "owner=alice"}, map[string]string{
			"net test": "filtered: did not match any --tag-meta owner=…", "dns test": "filtered: did not match any --tag-meta owner=…",
			"untagged":        "filtered: did not match any --tag-meta owner=…",
			"meta flaky bool": "filtered: did not match any --tag-meta owner=…", "meta flaky string": "filtered: did not match any --tag-meta owner=…"}},
		{"no-tag-meta", []string{"--no-tag-meta", "owner=alice"}, map[string]string{
			"meta subsystems": "filtered: matched --no-tag-meta (owner=alice)"}},
		{"no-tag-meta wins", []string{"--tag-meta", "owner=alice", "--no-tag-meta", "subsystems=net"}, map[string]string{
			"net test": "filtered: did not match any --tag-meta owner=…", "dns test": "filtered: did not match any --tag-meta owner=…",
			"untagged":        "filtered: did not match any --tag-meta owner=…",
			"meta subsystems": "filtered: matched --no-tag-meta (subsystems=net)",
			"meta flaky bool": "filtered: did not match any --tag-meta owner=…", "meta flaky string": "filtered: did not match any --tag-meta owner=…"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--json", "tags.test.lua"}, c.args...)
			code, out, errOut := newInvocation(t, dir).exec(args...)
			if code != ExitOK {
				t.Errorf("exit code %d, want 0 (skips are clean); stderr:\n%s", code, errOut)
			}
			checkJSONAgainst(t, dir, out, tagsWant(c.want))
		})
	}
}

func TestSelectionFromEnvironment(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	in.vars["PROVIUM_TEST_FILTER"] = `{"include_slow":false,"tag":["dns"],"no_tag":[],"tag_meta":[],"no_tag_meta":[]}`
	const r = `filtered: did not match --tag (["dns"])`
	_, out, _ := in.exec("--json", "tags.test.lua")
	checkJSONAgainst(t, dir, out, tagsWant(map[string]string{
		"net test": r, "untagged": r, "meta subsystems": r, "meta flaky bool": r, "meta flaky string": r}))
	// A selection flag replaces the environment entirely.
	_, out, _ = in.exec("--json", "tags.test.lua", "--no-tag", "smoke")
	checkJSONAgainst(t, dir, out, tagsWant(map[string]string{"net test": `filtered: matched --no-tag (["smoke"])`}))
}

func TestIncludeSlow(t *testing.T) {
	dir := suiteDir(t)
	code, out, _ := newInvocation(t, dir).exec("--json", "--include-slow", "skips.test.lua")
	if code != ExitOK {
		t.Errorf("exit code %d", code)
	}
	var want fileWant
	for _, fw := range suiteWant() {
		if fw.path == "skips.test.lua" {
			want = fw
		}
	}
	for i, tw := range want.tests {
		if tw.message == reasonSlow {
			want.tests[i] = testWant{name: tw.name, status: stPassed}
		}
	}
	want.tests[5].log = []string{"slow body ran"}
	checkJSONAgainst(t, dir, out, []fileWant{want})
}

func jsonPaths(t *testing.T, out string) []string {
	t.Helper()
	var paths []string
	for _, f := range parseJSONLines(t, out) {
		paths = append(paths, f.Path)
	}
	return paths
}

func TestFilterFlag(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--filter", "tags"}, []string{"tags.test.lua"}},
		{[]string{"--filter", "pack", "--filter", "sub/"}, []string{"pack.test.lua", "sub/nested.test.lua"}},
		{[]string{"--filter", "nested.test", "sub"}, []string{"sub/nested.test.lua"}},
		{[]string{"--filter", "a,b"}, nil}, // no comma splitting
	}
	for _, c := range cases {
		_, out, _ := in.exec(append([]string{"--json"}, c.args...)...)
		var got []string
		if strings.HasPrefix(out, `{"type":"no_files"`) {
			got = nil
		} else {
			got = jsonPaths(t, out)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: files %q, want %q", c.args, got, c.want)
		}
	}
}

func TestShard(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	var all []string
	for _, fw := range suiteWant() {
		all = append(all, fw.path)
	}
	var union []string
	for i, shard := range []string{"1/3", "2/3", "3/3"} {
		code, out, _ := in.exec("list", "--shard", shard)
		if code != ExitOK {
			t.Fatalf("list --shard %s: exit %d", shard, code)
		}
		var got []string
		for _, l := range lines(out) {
			if strings.HasPrefix(l, "  ") {
				got = append(got, strings.TrimPrefix(l, "  "))
			}
		}
		// Display paths sorted: file k goes to shard k mod 3 + 1.
		var want []string
		for k, p := range all {
			if k%3 == i {
				want = append(want, p)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("shard %s: %q, want %q", shard, got, want)
		}
		union = append(union, got...)
	}
	slices.Sort(union)
	if !slices.Equal(union, all) {
		t.Errorf("shards do not partition the suite: %q", union)
	}
	// The run uses the same split.
	_, out, _ := in.exec("--json", "--shard", "2/3", "--filter", "a")
	paths := jsonPaths(t, out)
	for _, p := range paths {
		if !strings.Contains(p, "a") {
			t.Errorf("--filter ran before --shard? got %s", p)
		}
	}
}

func TestSince(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"old.test.lua": `test("old", function(t) end)`,
		"new.test.lua": `test("new", function(t) end)`,
		"ref":          "",
	})
	now := time.Now()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chtimes(filepath.Join(dir, "old.test.lua"), now.Add(-2*time.Hour), now.Add(-2*time.Hour)))
	must(os.Chtimes(filepath.Join(dir, "ref"), now.Add(-time.Hour), now.Add(-time.Hour)))
	must(os.Chtimes(filepath.Join(dir, "new.test.lua"), now, now))
	in := newInvocation(t, dir)
	code, out, _ := in.exec("--json", "--since", filepath.Join(dir, "ref"))
	if got := jsonPaths(t, out); code != ExitOK || !slices.Equal(got, []string{"new.test.lua"}) {
		t.Errorf("--since: exit %d, files %q", code, got)
	}
	missing := filepath.Join(dir, "nope")
	code, _, errOut := in.exec("--since", missing)
	if code != ExitUsage || !strings.HasPrefix(errOut, "provium: --since: cannot stat `"+missing+"`: no such file or directory\n") {
		t.Errorf("--since missing: exit %d, stderr %q", code, errOut)
	}
}

func TestRerunFailed(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a_pass.test.lua": `test("p", function(t) end)`,
		"b_fail.test.lua": `test("f", function(t) t:fail("no") end)`,
	})
	in := newInvocation(t, dir)
	state := in.vars["PROVIUM_RERUN_STATE"]

	code, out, errOut := in.exec("--rerun-failed")
	wantNotice := "provium --rerun-failed: no prior failure state at `" + state + "` — nothing to re-run. Run `provium <paths>` once to populate.\n"
	if code != ExitOK || out != "" || errOut != wantNotice {
		t.Errorf("no state: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := os.WriteFile(state, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := in.exec("--rerun-failed"); code != ExitOK || errOut != wantNotice {
		t.Errorf("empty state: exit %d, stderr %q", code, errOut)
	}

	if code, _, _ := in.exec(); code != ExitFailed {
		t.Fatalf("first run: exit %d", code)
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := filepath.EvalSymlinks(filepath.Join(dir, "b_fail.test.lua"))
	if strings.TrimSpace(string(data)) != `["`+canon+`"]` {
		t.Errorf("state = %s, want [%q]", data, canon)
	}

	code, out, _ = in.exec("--json", "--rerun-failed")
	if got := jsonPaths(t, out); code != ExitFailed || !slices.Equal(got, []string{"b_fail.test.lua"}) {
		t.Errorf("--rerun-failed: exit %d, files %q", code, got)
	}

	// A clean run leaves the state alone.
	if code, _, _ := in.exec("a_pass.test.lua"); code != ExitOK {
		t.Fatalf("clean run: exit %d", code)
	}
	after, _ := os.ReadFile(state)
	if string(after) != string(data) {
		t.Errorf("clean run rewrote the state: %s", after)
	}
}

// TestSelectionExported: run mode sets PROVIUM_TEST_FILTER to the run's
// selection (20-cli-config.md §9): profile build commands get it in their
// environment and tests read it with os.getenv.
func TestSelectionExported(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"provium.toml": "[profiles.p]\nbuild = \"printf '%s' \\\"$PROVIUM_TEST_FILTER\\\" > {out}/filter\"\n" +
			"kernel = \"{out}/vmlinux\"\ncmdline = \"console=ttyS0\"\n",
		"a.test.lua": `test("sees the selection", {tags = "net", owner = "alice"}, function(t)
  t:log(os.getenv("PROVIUM_TEST_FILTER") or "unset")
end)
`,
		"boot.test.lua": `provium:vm("a", "p"):boot()`,
	})
	const want = `{"include_slow":true,"tag":["net"],"no_tag":["dns"],"tag_meta":[{"key":"owner","value":"alice"}],"no_tag_meta":[]}`
	in := newInvocation(t, dir)
	var out, errb syncBuffer
	env := in.env(&out, &errb)
	env.Setenv = func(k, v string) error { t.Setenv(k, v); return nil }
	Execute(context.Background(), env, []string{"--json", "--accel", "tcg", "--include-slow", "--tag", "net", "--no-tag", "dns",
		"--tag-meta", "owner=alice", "a.test.lua", "boot.test.lua"})
	files := parseJSONLines(t, out.String())
	if len(files) != 2 || len(files[0].Tests) != 1 || !slices.Equal(files[0].Tests[0].Log, []string{want}) {
		t.Errorf("tests see %+v, want log %s\nstderr %s", files, want, errb.String())
	}
	if got := readFile(t, filepath.Join(dir, ".provium-build", "p", "filter")); got != want {
		t.Errorf("build command sees %q, want %s", got, want)
	}
}
