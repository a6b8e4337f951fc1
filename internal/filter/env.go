package filter

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EnvVar carries the selection flags to child provium processes.
const EnvVar = "PROVIUM_TEST_FILTER"

// envForm is the JSON shape of EnvVar; field order is the documented one.
type envForm struct {
	IncludeSlow bool     `json:"include_slow"`
	Tag         []string `json:"tag"`
	NoTag       []string `json:"no_tag"`
	TagMeta     []KV     `json:"tag_meta"`
	NoTagMeta   []KV     `json:"no_tag_meta"`
}

// EnvJSON encodes o for EnvVar. Empty lists are written as [] (never
// null) so any reader sees arrays.
func (o Options) EnvJSON() string {
	form := envForm{
		IncludeSlow: o.IncludeSlow,
		Tag:         nonNil(o.Tag),
		NoTag:       nonNil(o.NoTag),
		TagMeta:     nonNil(o.TagMeta),
		NoTagMeta:   nonNil(o.NoTagMeta),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Tags are user text, not HTML: keep <, > and & readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(form); err != nil {
		// Only strings, bools and slices of them: encoding cannot fail.
		panic(fmt.Sprintf("filter: encode %s: %v", EnvVar, err))
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// ParseEnv decodes the value of EnvVar. Missing fields mean "not set".
func ParseEnv(s string) (Options, error) {
	var form envForm
	if err := json.Unmarshal([]byte(s), &form); err != nil {
		return Options{}, fmt.Errorf("%s: %w", EnvVar, err)
	}
	return Options{
		IncludeSlow: form.IncludeSlow,
		Tag:         form.Tag,
		NoTag:       form.NoTag,
		TagMeta:     form.TagMeta,
		NoTagMeta:   form.NoTagMeta,
	}, nil
}

// Resolve picks the options a run uses: the flags when any selection flag
// was given on the command line, else EnvVar when it is set and non-empty
// (via lookup, e.g. os.LookupEnv), else the (empty) flags.
func Resolve(flags Options, flagGiven bool, lookup func(string) (string, bool)) (Options, error) {
	if flagGiven || lookup == nil {
		return flags, nil
	}
	raw, ok := lookup(EnvVar)
	if !ok || raw == "" {
		return flags, nil
	}
	return ParseEnv(raw)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
