package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/result"
)

// node is a parsed XML element, enough to check a schema's structure.
type node struct {
	name     string
	attrs    map[string]string
	attrList []string // in document order
	children []*node
	text     string // character data directly inside this element
}

func (n *node) attr(k string) string { return n.attrs[k] }

func (n *node) childrenNamed(name string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// parseXML parses with encoding/xml in strict mode, which also rejects
// characters XML 1.0 forbids (e.g. a raw ESC).
func parseXML(t *testing.T, data []byte) *node {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attrs: map[string]string{}}
			if tok.Name.Space != "" {
				t.Errorf("element %s has a namespace %q; the schema has no target namespace", tok.Name.Local, tok.Name.Space)
			}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
				n.attrList = append(n.attrList, a.Name.Local)
			}
			if len(stack) == 0 {
				if root != nil {
					t.Fatal("more than one root element")
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil {
		t.Fatal("no root element")
	}
	return root
}

// elementRule is one element declaration of junit-10.xsd.
type elementRule struct {
	required []string
	allowed  []string // every declared attribute, required ones included
	children []string // allowed child elements; nil = none (simple or mixed without elements)
	textOK   bool     // mixed content or xs:string
	timeAttr bool     // `time` is of type SUREFIRE_TIME
}

// junit10 transcribes the rules of Jenkins xUnit junit-10.xsd that a
// validator enforces on our output:
//   - the root is <testsuites> (we never emit a bare <testsuite> root);
//   - testsuites: attributes name, time, tests, failures, errors, all
//     optional; content a sequence of <testsuite> only, no text;
//   - testsuite: name, tests, failures, errors required; optional group,
//     time, skipped, timestamp, hostname, id, package, file, log, url; content
//     a choice of testsuite, properties, testcase, system-out, system-err; no
//     text;
//   - properties: only <property> children, no attributes, no text;
//   - property: name and value required, nothing else, empty;
//   - testcase: name required; optional time, classname, group; children a
//     choice of skipped, error, failure, rerunFailure, rerunError,
//     flakyFailure, flakyError, system-out, system-err; no text;
//   - failure, error, skipped: optional type and message, mixed content with
//     no child elements;
//   - system-out, system-err: xs:string, so text only and no attributes;
//   - time on testsuites/testsuite matches the SUREFIRE_TIME pattern;
//   - no attribute outside the declared ones (the schema has no anyAttribute)
//     and no namespaces (no targetNamespace).
var junit10 = map[string]elementRule{
	"testsuites": {
		allowed:  []string{"name", "time", "tests", "failures", "errors"},
		children: []string{"testsuite"},
		timeAttr: true,
	},
	"testsuite": {
		required: []string{"name", "tests", "failures", "errors"},
		allowed: []string{"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp",
			"hostname", "id", "package", "file", "log", "url"},
		children: []string{"testsuite", "properties", "testcase", "system-out", "system-err"},
		timeAttr: true,
	},
	"properties": {children: []string{"property"}},
	"property":   {required: []string{"name", "value"}, allowed: []string{"name", "value"}},
	"testcase": {
		required: []string{"name"},
		allowed:  []string{"name", "time", "classname", "group"},
		children: []string{"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure",
			"flakyError", "system-out", "system-err"},
	},
	"failure":    {allowed: []string{"type", "message"}, textOK: true},
	"error":      {allowed: []string{"type", "message"}, textOK: true},
	"skipped":    {allowed: []string{"type", "message"}, textOK: true},
	"system-out": {textOK: true},
	"system-err": {textOK: true},
}

var surefireTime = regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$`)

func validateJUnit10(t *testing.T, root *node) {
	t.Helper()
	for _, p := range junit10Problems(root) {
		t.Error(p)
	}
}

// junit10Problems lists every violation of the junit10 rules under root.
func junit10Problems(root *node) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if root.name != "testsuites" {
		report("root is <%s>, want <testsuites>", root.name)
	}
	var walk func(n *node, path string)
	walk = func(n *node, path string) {
		path += "/" + n.name
		rule, ok := junit10[n.name]
		if !ok {
			report("%s: element not declared by the schema", path)
			return
		}
		for _, a := range rule.required {
			if _, ok := n.attrs[a]; !ok {
				report("%s: missing required attribute %s", path, a)
			}
		}
		for _, a := range n.attrList {
			if !slices.Contains(rule.allowed, a) {
				report("%s: attribute %s not allowed", path, a)
			}
		}
		if rule.timeAttr {
			if v, ok := n.attrs["time"]; ok && !surefireTime.MatchString(v) {
				report("%s: time %q is not a SUREFIRE_TIME", path, v)
			}
		}
		if !rule.textOK && strings.TrimSpace(n.text) != "" {
			report("%s: element-only content holds text %q", path, n.text)
		}
		for _, c := range n.children {
			if !slices.Contains(rule.children, c.name) {
				report("%s: child <%s> not allowed", path, c.name)
			}
			walk(c, path)
		}
	}
	walk(root, "")
	return problems
}

// The checker itself must be able to fail, or passing it proves nothing.
func TestJUnit10CheckerRejectsViolations(t *testing.T) {
	bad := `<testsuites skipped="1" time="1,5s"><testsuite name="a" tests="1" failures="0" time="x">stray` +
		`<testcase classname="c"><failure><b/></failure><system-out a="1"/></testcase>` +
		`<properties><property name="n"/></properties></testsuite></testsuites>`
	got := junit10Problems(parseXML(t, []byte(bad)))
	want := []string{
		"/testsuites: attribute skipped not allowed",
		`/testsuites: time "1,5s" is not a SUREFIRE_TIME`,
		"/testsuites/testsuite: missing required attribute errors",
		`/testsuites/testsuite: time "x" is not a SUREFIRE_TIME`,
		`/testsuites/testsuite: element-only content holds text "stray"`,
		"/testsuites/testsuite/testcase: missing required attribute name",
		"/testsuites/testsuite/testcase/failure: child <b> not allowed",
		"/testsuites/testsuite/testcase/failure/b: element not declared by the schema",
		"/testsuites/testsuite/testcase/system-out: attribute a not allowed",
		"/testsuites/testsuite/properties/property: missing required attribute value",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("checker missed %q; it reported:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if p := junit10Problems(parseXML(t, []byte(`<testsuite name="a" tests="0" failures="0" errors="0"/>`))); len(p) == 0 {
		t.Error("checker accepted a <testsuite> root")
	}
}

func encodeJUnit(t *testing.T, run *result.Run) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeJUnit(&b, run, JUnitOptions{Hostname: "ci-host"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sampleRun() *result.Run {
	return &result.Run{
		Files:    []*result.File{passingFile(), failingFile(), chunkErrorFile(), timedOutFile()},
		Duration: 35500 * time.Millisecond,
		Seed:     7,
	}
}

func TestJUnitValidatesAgainstSchemaRules(t *testing.T) {
	data := encodeJUnit(t, sampleRun())
	if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("missing XML declaration: %.60s", data)
	}
	validateJUnit10(t, parseXML(t, data))
}

func TestJUnitEmptyRunIsValid(t *testing.T) {
	root := parseXML(t, encodeJUnit(t, &result.Run{}))
	validateJUnit10(t, root)
	if got := root.attr("tests"); got != "0" {
		t.Errorf("tests = %q, want 0", got)
	}
}

func TestJUnitContent(t *testing.T) {
	root := parseXML(t, encodeJUnit(t, sampleRun()))
	wantRoot := map[string]string{"name": "provium", "tests": "10", "failures": "3", "errors": "2", "time": "35.500"}
	for k, v := range wantRoot {
		if got := root.attr(k); got != v {
			t.Errorf("testsuites %s = %q, want %q", k, got, v)
		}
	}
	suites := root.childrenNamed("testsuite")
	if len(suites) != 4 {
		t.Fatalf("%d testsuites, want 4", len(suites))
	}

	pass := suites[0]
	for k, v := range map[string]string{
		"name": "tests/smoke.test.lua", "file": "tests/smoke.test.lua", "tests": "2", "failures": "0",
		"errors": "0", "skipped": "1", "time": "2.000", "timestamp": "2026-11-29T14:04:05", "hostname": "ci-host",
	} {
		if got := pass.attr(k); got != v {
			t.Errorf("passing suite %s = %q, want %q", k, got, v)
		}
	}
	var props []string
	for _, p := range pass.childrenNamed("properties")[0].children {
		props = append(props, p.attr("name")+"="+p.attr("value"))
	}
	if want := []string{"seed=42", "accel=tcg", "accel_reason=tcg requested (--accel tcg)", "provium_version=0.1.0"}; !slices.Equal(props, want) {
		t.Errorf("properties %v, want %v", props, want)
	}
	cases := pass.childrenNamed("testcase")
	if got := cases[0].attr("classname") + "|" + cases[0].attr("time"); got != "tests/smoke.test.lua|1.500" {
		t.Errorf("passed testcase classname|time = %q", got)
	}
	if len(cases[0].children) != 0 {
		t.Errorf("passed testcase has children %v", cases[0].children)
	}
	if sk := cases[1].childrenNamed("skipped"); len(sk) != 1 || sk[0].attr("message") != "filtered: slow tests skipped (pass --include-slow)" {
		t.Errorf("skipped testcase: %+v", cases[1].children)
	}

	fail := suites[1]
	if got := fail.attr("timestamp"); got != "" {
		t.Errorf("timestamp %q for a file with no start time, want none", got)
	}
	// Without runner-provided properties the run's seed is still recorded.
	if p := fail.childrenNamed("properties")[0].children; len(p) != 1 || p[0].attr("name") != "seed" || p[0].attr("value") != "7" {
		t.Errorf("fallback properties: %+v", p)
	}
	failed := fail.childrenNamed("testcase")[1]
	f := failed.childrenNamed("failure")
	if len(f) != 1 {
		t.Fatalf("failed testcase children: %+v", failed.children)
	}
	if f[0].attr("type") != "failure" || f[0].attr("message") != "partition.test.lua:12: client A could not reach B" {
		t.Errorf("failure attrs %v", f[0].attrs)
	}
	if want := failingFile().Tests[1].Message; f[0].text != want {
		t.Errorf("failure text %q, want %q", f[0].text, want)
	}
	wantOut := "partition.test.lua:12: client A could not reach B\nstack traceback:\n\tpartition.test.lua:12\n" +
		"before partition\ntwo\nlines\n" +
		"--- console a ---\nlogin:\uFFFD[0m ok\n" +
		"--- console dc1/b ---\n"
	if out := failed.childrenNamed("system-out"); len(out) != 1 || out[0].text != wantOut {
		t.Errorf("system-out = %+v, want text %q", out, wantOut)
	}

	chunk := suites[2]
	if got := chunk.attr("tests") + "/" + chunk.attr("errors"); got != "1/1" {
		t.Errorf("chunk suite tests/errors = %s, want 1/1", got)
	}
	fc := chunk.childrenNamed("testcase")[0]
	if fc.attr("name") != "(file)" {
		t.Errorf("file testcase named %q", fc.attr("name"))
	}
	if e := fc.childrenNamed("error"); len(e) != 1 || e[0].attr("type") != "chunk_error" ||
		e[0].attr("message") != "tests/broken.test.lua:3: attempt to call a nil value" || e[0].text != chunkErrorFile().ChunkError {
		t.Errorf("chunk error element: %+v", e)
	}

	timed := suites[3]
	if got := timed.attr("tests") + "/" + timed.attr("failures") + "/" + timed.attr("errors"); got != "4/2/1" {
		t.Errorf("timed-out suite tests/failures/errors = %s, want 4/2/1", got)
	}
	tc := timed.childrenNamed("testcase")
	if e := tc[len(tc)-1].childrenNamed("error"); len(e) != 1 || e[0].attr("type") != "timed_out" || e[0].attr("message") != "file timed out after 30s" {
		t.Errorf("timeout error element: %+v", e)
	}
}

func TestJUnitReplacesXMLIllegalCharacters(t *testing.T) {
	f := &result.File{Path: "x\x01.test.lua", Tests: []result.Test{{
		Name: "t\x1b", Status: result.Failed, Message: "a\x00b\xffc\uFFFE",
		Log: []string{"\x07bell"}, Consoles: []result.Console{{VM: "v", Tail: "\x1b[31mred"}},
	}}}
	root := parseXML(t, encodeJUnit(t, &result.Run{Files: []*result.File{f}}))
	validateJUnit10(t, root)
	suite := root.childrenNamed("testsuite")[0]
	tc := suite.childrenNamed("testcase")[0]
	checks := map[string]string{
		"suite name":    suite.attr("name"),
		"testcase name": tc.attr("name"),
		"failure text":  tc.childrenNamed("failure")[0].text,
		"system-out":    tc.childrenNamed("system-out")[0].text,
	}
	want := map[string]string{
		"suite name":    "x\uFFFD.test.lua",
		"testcase name": "t\uFFFD",
		"failure text":  "a\uFFFDb\uFFFDc\uFFFD",
		"system-out":    "a\uFFFDb\uFFFDc\uFFFD\n\uFFFDbell\n--- console v ---\n\uFFFD[31mred\n",
	}
	for k, got := range checks {
		if got != want[k] {
			t.Errorf("%s = %q, want %q", k, got, want[k])
		}
	}
}

func TestJUnitKeepsCarriageReturnsAndNewlines(t *testing.T) {
	f := &result.File{Path: "a.test.lua", Tests: []result.Test{
		{Name: "s", Status: result.Skipped, Message: "why\r\nnot"},
		{Name: "f", Status: result.Failed, Message: "x\r\ny\tz"},
	}}
	root := parseXML(t, encodeJUnit(t, &result.Run{Files: []*result.File{f}}))
	cases := root.childrenNamed("testsuite")[0].childrenNamed("testcase")
	if got := cases[0].childrenNamed("skipped")[0].attr("message"); got != "why\r\nnot" {
		t.Errorf("message = %q: attribute normalisation lost characters", got)
	}
	if got := cases[1].childrenNamed("failure")[0].text; got != "x\r\ny\tz" {
		t.Errorf("failure text = %q: line-end normalisation lost characters", got)
	}
}

func TestWriteJUnitAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "junit.xml")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteJUnit(path, sampleRun(), JUnitOptions{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	validateJUnit10(t, parseXML(t, data))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only junit.xml (temp file left behind?)", len(entries))
	}
}

func TestWriteJUnitFailsIntoMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "junit.xml")
	err := WriteJUnit(path, sampleRun(), JUnitOptions{Hostname: "h"})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want an error naming %s", err, path)
	}
}
