package cli

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/provium/provium/internal/accel"
)

// checkJSONAgainst compares --json output with want, one subtest per file
// so a failing expectation names the file.
func checkJSONAgainst(t *testing.T, dir, out string, want []fileWant) {
	t.Helper()
	got := parseJSONLines(t, out)
	var gotPaths, wantPaths []string
	for _, f := range got {
		gotPaths = append(gotPaths, f.Path)
	}
	for _, f := range want {
		wantPaths = append(wantPaths, f.path)
	}
	if strings.Join(gotPaths, "\n") != strings.Join(wantPaths, "\n") {
		t.Fatalf("files (in order):\n got %q\nwant %q", gotPaths, wantPaths)
	}
	for i, fw := range want {
		g := got[i]
		t.Run(fw.path, func(t *testing.T) {
			checkFile(t, dir, g, fw)
		})
	}
}

func checkFile(t *testing.T, dir string, g jsonFile, fw fileWant) {
	t.Helper()
	wantTimeout := "in_time"
	if fw.timedOut {
		wantTimeout = "timed_out"
	}
	if g.Timeout != wantTimeout {
		t.Errorf("timeout = %q, want %q", g.Timeout, wantTimeout)
	}
	if g.Passed != fw.passes() {
		t.Errorf("passed = %v, want %v", g.Passed, fw.passes())
	}
	switch {
	case fw.chunkError == "" && g.ChunkError != nil:
		t.Errorf("unexpected chunk_error %q", *g.ChunkError)
	case fw.chunkError != "" && g.ChunkError == nil:
		t.Errorf("chunk_error = null, want %q", expandMarkers(t, dir, fw.path, fw.chunkError))
	case fw.chunkError != "":
		if want := expandMarkers(t, dir, fw.path, fw.chunkError); *g.ChunkError != want {
			t.Errorf("chunk_error = %q, want %q", *g.ChunkError, want)
		}
	}
	if fw.chunkError != "" {
		if len(g.Tests) != 0 {
			t.Errorf("a chunk-error file lists tests: %+v", g.Tests)
		}
		return
	}
	if len(g.Tests) != len(fw.tests) {
		t.Errorf("%d tests, want %d: %+v", len(g.Tests), len(fw.tests), g.Tests)
		return
	}
	for i, tw := range fw.tests {
		gt := g.Tests[i]
		if gt.Name != tw.name {
			t.Errorf("test %d name = %q, want %q", i, gt.Name, tw.name)
			continue
		}
		msg := ""
		if gt.Message != nil {
			msg = *gt.Message
		}
		if gt.Status != tw.status {
			t.Errorf("%q: status %s (message %q), want %s", tw.name, gt.Status, msg, tw.status)
			continue
		}
		if tw.status == stPassed {
			if gt.Message != nil {
				t.Errorf("%q: passed test has message %q, want null", tw.name, msg)
			}
		} else {
			want := expandMarkers(t, dir, fw.path, tw.message)
			if tw.prefix && !strings.HasPrefix(msg, want) || !tw.prefix && msg != want {
				t.Errorf("%q: message\n got %q\nwant %q (prefix=%v)", tw.name, msg, want, tw.prefix)
			}
		}
		if gt.Log == nil {
			t.Errorf("%q: log is null, want an array", tw.name)
		}
		if tw.log != nil && strings.Join(gt.Log, "\x00") != strings.Join(tw.log, "\x00") {
			t.Errorf("%q: log = %q, want %q", tw.name, gt.Log, tw.log)
		}
	}
}

func TestSelftestJSON(t *testing.T) {
	dir := suiteDir(t)
	code, out, errOut := newInvocation(t, dir).exec("--json", "--seed", "7")
	if code != ExitFailed {
		t.Errorf("exit code %d, want 1; stderr:\n%s", code, errOut)
	}
	if !containsLine(errOut, "seed 7 (reproduce with --seed 7)") {
		t.Errorf("stderr lacks the seed line:\n%s", errOut)
	}
	if strings.Contains(out, "file(s);") {
		t.Errorf("--json printed a summary on stdout")
	}
	checkJSONAgainst(t, dir, out, suiteWant())
}

// summaryRE matches the summary line with the expected counts.
func summaryRE(files []fileWant) *regexp.Regexp {
	p, f, s, e := counts(files)
	tail := ""
	if e > 0 {
		tail = fmt.Sprintf(", %d file\\(s\\) errored", e)
	}
	return regexp.MustCompile(fmt.Sprintf(`(?m)^%d file\(s\); %d passed, %d failed, %d skipped%s; \d+\.\d\ds$`, len(files), p, f, s, tail))
}

// fileLines returns the file-result lines of plain output, in order.
func fileLines(out string) []string {
	var res []string
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "PASS ") || strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "TIME ") {
			res = append(res, l)
		}
	}
	return res
}

func wantFileLine(fw fileWant) string {
	label := "PASS"
	switch {
	case fw.timedOut:
		label = "TIME"
	case !fw.passes():
		label = "FAIL"
	}
	if fw.chunkError != "" {
		return label + " " + fw.path
	}
	var p, f, s int
	for _, tw := range fw.tests {
		switch tw.status {
		case stPassed:
			p++
		case stFailed:
			f++
		default:
			s++
		}
	}
	return fmt.Sprintf("%s %s (%d passed, %d failed, %d skipped)", label, fw.path, p, f, s)
}

func TestSelftestPlain(t *testing.T) {
	dir := suiteDir(t)
	want := suiteWant()
	code, out, errOut := newInvocation(t, dir).exec("--seed", "11")
	if code != ExitFailed {
		t.Errorf("exit code %d, want 1; stderr:\n%s", code, errOut)
	}
	var wantLines []string
	for _, fw := range want {
		wantLines = append(wantLines, wantFileLine(fw))
	}
	if got := fileLines(out); strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("file lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if !summaryRE(want).MatchString(out) {
		t.Errorf("summary does not match %v:\n%s", summaryRE(want), out)
	}
	for _, l := range []string{
		"FAIL chunk_error.test.lua",
		"  chunk_error: chunk_error.test.lua:4: top level broke",
		"    FAIL assert fails by default message",
		"        assertions.test.lua:11: assertion failed",
		"    FAIL failure inside pcall still fails",
		"        first: 1 ~= 2",
		"seed 11 (reproduce with --seed 11)",
	} {
		if !containsLine(out, l) {
			t.Errorf("output lacks line %q", l)
		}
	}
	if strings.Contains(out, "    PASS ") || strings.Contains(out, "    SKIP ") || strings.Contains(out, "log: ") {
		t.Errorf("plain output shows PASS/SKIP/log lines without -v")
	}
	if !strings.Contains(out, "\n\n"+strings.SplitN(summaryRE(want).FindString(out), ";", 2)[0]) {
		t.Errorf("summary is not preceded by an empty line")
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("ANSI escapes in non-terminal output")
	}
}

func TestSelftestVerbose(t *testing.T) {
	dir := suiteDir(t)
	code, out, _ := newInvocation(t, dir).exec("-v", "log.test.lua", "skips.test.lua")
	if code != ExitFailed {
		t.Errorf("exit code %d, want 1", code)
	}
	want := strings.Join([]string{
		"FAIL log.test.lua (1 passed, 1 failed, 0 skipped)",
		"    PASS log on a passing test",
		"    FAIL log on a failing test",
		"        log.test.lua:11: after logging",
		"        log: step 1",
		"        log: two",
		"             lines",
		"PASS skips.test.lua (2 passed, 0 failed, 8 skipped)",
		"    SKIP skip = true (skipped (meta.skip))",
		"    SKIP skip = 1 (skipped (meta.skip))",
		"    PASS skip = 0 runs",
		"    PASS skip = false runs",
		"    SKIP skip = reason (skipped: flaky on CI)",
		"    SKIP slow = true (filtered: slow tests skipped (pass --include-slow))",
		"    SKIP slow = 1 (filtered: slow tests skipped (pass --include-slow))",
		"    SKIP skip beats slow (skipped (meta.skip))",
		"    SKIP t:skip with a reason (not today)",
		"    SKIP t:skip without a reason (skipped)",
		"",
	}, "\n")
	if !strings.HasPrefix(out, want) {
		t.Errorf("-v output:\n%s\nwant prefix:\n%s", out, want)
	}
}

func TestSelftestQuiet(t *testing.T) {
	dir := suiteDir(t)
	want := suiteWant()
	code, out, _ := newInvocation(t, dir).exec("-q")
	if code != ExitFailed {
		t.Errorf("exit code %d, want 1", code)
	}
	var wantLines []string
	for _, fw := range want {
		if !fw.passes() {
			wantLines = append(wantLines, wantFileLine(fw))
		}
	}
	if got := fileLines(out); strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("-q file lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if !summaryRE(want).MatchString(out) {
		t.Errorf("-q dropped the summary:\n%s", out)
	}
	if !containsLine(out, "        first: 1 ~= 2") {
		t.Errorf("-q dropped failure details")
	}
}

// JUnit document, as much as the tests read.
type junitDoc struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string `xml:"name,attr"`
	File       string `xml:"file,attr"`
	Tests      int    `xml:"tests,attr"`
	Failures   int    `xml:"failures,attr"`
	Errors     int    `xml:"errors,attr"`
	Skipped    int    `xml:"skipped,attr"`
	Timestamp  string `xml:"timestamp,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []struct {
		Name      string `xml:"name,attr"`
		Classname string `xml:"classname,attr"`
		Failure   *struct {
			Type    string `xml:"type,attr"`
			Message string `xml:"message,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
		Error *struct {
			Type    string `xml:"type,attr"`
			Message string `xml:"message,attr"`
		} `xml:"error"`
		SystemOut string `xml:"system-out"`
	} `xml:"testcase"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("junit report: %v", err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit report does not parse: %v\n%s", err, data)
	}
	return doc
}

func TestSelftestJUnit(t *testing.T) {
	dir := suiteDir(t)
	want := suiteWant()
	path := t.TempDir() + "/report.xml"
	code, _, errOut := newInvocation(t, dir).exec("-q", "--seed", "42", "--junit", path)
	if code != ExitFailed {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, errOut)
	}
	doc := readJUnit(t, path)
	chosen, err := accel.Resolve(context.Background(), "auto", "default", accel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, failed, _, errored := counts(want)
	tests := 0
	for _, fw := range want {
		tests += len(fw.tests)
		if fw.chunkError != "" || fw.timedOut {
			tests++ // the (file) testcase
		}
	}
	if doc.Name != "provium" || doc.Tests != tests || doc.Failures != failed || doc.Errors != errored {
		t.Errorf("testsuites name=%q tests=%d failures=%d errors=%d, want provium/%d/%d/%d",
			doc.Name, doc.Tests, doc.Failures, doc.Errors, tests, failed, errored)
	}
	if len(doc.Suites) != len(want) {
		t.Fatalf("%d suites, want %d", len(doc.Suites), len(want))
	}
	for i, fw := range want {
		s := doc.Suites[i]
		if s.Name != fw.path || s.File != fw.path {
			t.Errorf("suite %d name/file = %q/%q, want %q", i, s.Name, s.File, fw.path)
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(s.Timestamp) {
			t.Errorf("%s: timestamp %q", fw.path, s.Timestamp)
		}
		props := map[string]string{}
		for _, p := range s.Properties {
			props[p.Name] = p.Value
		}
		// The accel the run chose (never the request `auto`) and why.
		if props["seed"] != "42" || props["accel"] != string(chosen.Accel) ||
			props["accel_reason"] != chosen.Why() || props["provium_version"] == "" {
			t.Errorf("%s: properties %v, want accel %s (%s)", fw.path, props, chosen.Accel, chosen.Why())
		}
	}
	suite := func(path string) junitSuite {
		for _, s := range doc.Suites {
			if s.Name == path {
				return s
			}
		}
		t.Fatalf("no suite %s", path)
		return junitSuite{}
	}
	ce := suite("chunk_error.test.lua")
	if n := len(ce.Cases); n != 1 || ce.Cases[0].Name != "(file)" || ce.Cases[0].Error == nil ||
		ce.Cases[0].Error.Type != "chunk_error" || ce.Cases[0].Error.Message != "chunk_error.test.lua:4: top level broke" || ce.Errors != 1 {
		t.Errorf("chunk error suite: %+v", ce)
	}
	lg := suite("log.test.lua")
	c := lg.Cases[1]
	if c.Failure == nil || c.Failure.Type != "failure" || c.Failure.Message != "log.test.lua:11: after logging" {
		t.Errorf("failed case: %+v", c)
	}
	if !strings.Contains(c.SystemOut, "log.test.lua:11: after logging\nstep 1\ntwo\nlines\n") {
		t.Errorf("system-out = %q", c.SystemOut)
	}
	sk := suite("skips.test.lua")
	if sk.Skipped != 8 || sk.Cases[4].Skipped == nil || sk.Cases[4].Skipped.Message != "skipped: flaky on CI" {
		t.Errorf("skips suite: skipped=%d case=%+v", sk.Skipped, sk.Cases[4])
	}
}

// TestJUnitAccelRequested: an explicit --accel tcg is recorded with where
// it came from.
func TestJUnitAccelRequested(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.test.lua": `test("t", function() end)`})
	path := t.TempDir() + "/report.xml"
	code, _, errOut := newInvocation(t, dir).exec("--accel", "tcg", "--junit", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	props := map[string]string{}
	for _, p := range readJUnit(t, path).Suites[0].Properties {
		props[p.Name] = p.Value
	}
	if props["accel"] != "tcg" || props["accel_reason"] != "tcg requested (--accel tcg)" {
		t.Fatalf("properties %v", props)
	}
}
