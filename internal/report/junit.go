package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/provium/provium/internal/result"
)

// The element and attribute names below follow Jenkins xUnit junit-10.xsd
// (20-cli-config.md §4.5); junit_test.go checks the schema's rules.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	File       string           `xml:"file,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Hostname   string           `xml:"hostname,attr,omitempty"`
	Properties *junitProperties `xml:"properties"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitSkipped `xml:"skipped"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	SystemOut *textElement  `xml:"system-out"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitProblem struct {
	Type    string
	Message string
	Text    string
}

// MarshalXML writes the text through EncodeToken, which, unlike a
// `,chardata` field, leaves newlines unescaped: stack traces in the report
// stay readable in a text editor.
func (p *junitProblem) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: p.Type},
		{Name: xml.Name{Local: "message"}, Value: p.Message},
	}
	return encodeText(e, start, p.Text)
}

// textElement is an element holding only text, written like junitProblem's.
type textElement string

func (t *textElement) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return encodeText(e, start, string(*t))
}

func encodeText(e *xml.Encoder, start xml.StartElement, text string) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.CharData(text)); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// fileCaseName names the extra testcase that carries a file-level error.
const fileCaseName = "(file)"

// JUnitOptions are the parts of the report that come from the host.
type JUnitOptions struct {
	// Hostname goes into every <testsuite>; empty means os.Hostname().
	Hostname string
}

// WriteJUnit writes the report to path atomically: a temp file in the same
// directory, synced, then renamed, so a CI job never reads half a report and
// a failed write leaves the previous report alone.
func WriteJUnit(path string, run *result.Run, opts JUnitOptions) error {
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("junit: create temp file for `%s`: %w", path, err)
	}
	defer f.Cleanup()
	w := bufio.NewWriter(f)
	if err := EncodeJUnit(w, run, opts); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("junit: write `%s`: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("junit: replace `%s`: %w", path, err)
	}
	return nil
}

// EncodeJUnit writes the JUnit XML document for run to w.
func EncodeJUnit(w io.Writer, run *result.Run, opts JUnitOptions) error {
	host := opts.Hostname
	if host == "" {
		// Optional in the schema: without a hostname the attribute is omitted.
		host, _ = os.Hostname()
	}
	doc := junitSuites{Name: "provium", Time: seconds(run.Duration), Suites: []junitSuite{}}
	for _, f := range run.Files {
		s := suiteOf(f, run.Seed, host)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: write: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("junit: encode: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit: write: %w", err)
	}
	return nil
}

func suiteOf(f *result.File, seed uint64, host string) junitSuite {
	path := xmlSafe(f.Path)
	s := junitSuite{
		Name:       path,
		File:       path,
		Time:       seconds(f.Duration),
		Hostname:   xmlSafe(host),
		Properties: propertiesOf(f, seed),
		Cases:      []junitCase{},
	}
	if !f.Started.IsZero() {
		s.Timestamp = f.Started.UTC().Format("2006-01-02T15:04:05")
	}
	var inTests time.Duration
	for i := range f.Tests {
		t := &f.Tests[i]
		inTests += t.Duration
		c := junitCase{Name: xmlSafe(t.Name), Classname: path, Time: seconds(t.Duration)}
		switch t.Status {
		case result.Failed:
			s.Failures++
			msg := xmlSafe(t.Message)
			c.Failure = &junitProblem{Type: "failure", Message: firstLine(msg), Text: msg}
			out := textElement(xmlSafe(systemOut(t)))
			c.SystemOut = &out
		case result.Skipped:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: xmlSafe(t.Message)}
		}
		s.Cases = append(s.Cases, c)
	}
	if f.HasChunkError || f.TimedOut {
		s.Errors++
		// The file case gets the time no test accounts for: top level and
		// teardown.
		c := junitCase{Name: fileCaseName, Classname: path, Time: seconds(f.Duration - inTests)}
		c.Error = fileError(f)
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	return s
}

func fileError(f *result.File) *junitProblem {
	if !f.TimedOut {
		msg := xmlSafe(f.ChunkError)
		return &junitProblem{Type: "chunk_error", Message: firstLine(msg), Text: msg}
	}
	msg := "file timed out after " + FormatDuration(f.Timeout)
	text := msg
	if f.HasChunkError {
		text += "\n" + xmlSafe(f.ChunkError)
	}
	return &junitProblem{Type: "timed_out", Message: msg, Text: text}
}

// propertyOrder puts the properties the spec names first; any others follow
// sorted so the document is deterministic.
var propertyOrder = []string{"seed", "accel", "accel_reason", "provium_version"}

func propertiesOf(f *result.File, seed uint64) *junitProperties {
	props := &junitProperties{}
	get := func(k string) (string, bool) {
		v, ok := f.Properties[k]
		if !ok && k == "seed" {
			// The run's seed is the file's seed unless the runner said otherwise.
			return strconv.FormatUint(seed, 10), true
		}
		return v, ok
	}
	for _, k := range propertyOrder {
		if v, ok := get(k); ok {
			props.Props = append(props.Props, junitProperty{Name: k, Value: xmlSafe(v)})
		}
	}
	var rest []string
	for k := range f.Properties {
		if !slices.Contains(propertyOrder, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		props.Props = append(props.Props, junitProperty{Name: xmlSafe(k), Value: xmlSafe(f.Properties[k])})
	}
	return props
}

// systemOut is what a failed test leaves for the reader: the message, its
// log, then the tail of every VM console it booted.
func systemOut(t *result.Test) string {
	var b strings.Builder
	line := func(s string) {
		b.WriteString(s)
		if !strings.HasSuffix(s, "\n") {
			b.WriteString("\n")
		}
	}
	line(t.Message)
	for _, entry := range t.Log {
		line(entry)
	}
	for _, c := range t.Consoles {
		line("--- console " + c.VM + " ---")
		if c.Tail != "" {
			line(c.Tail)
		}
	}
	return b.String()
}

// firstLine is the line an attribute can carry (a failure's message).
func firstLine(s string) string { return splitLines(s)[0] }

// seconds renders a duration as the schema's SUREFIRE_TIME: seconds with
// three decimals, never negative.
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
