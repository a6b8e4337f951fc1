package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/provium/provium/internal/units"
)

// Problems named in the generic `<where> <key>: <problem>, got `<v>“ form;
// each states what is accepted.
const (
	probString     = "must be a string"
	probPath       = "must be a non-empty path string"
	probNonEmpty   = "must be a non-empty string"
	probBool       = "must be `true` or `false`"
	probSize       = "must be a positive size: integer bytes or a number with `K`/`M`/`G`/`T` (e.g. `512M`, `1.5G`)"
	probPosInt     = "must be a positive integer"
	probAccel      = "must be `auto`, `kvm` or `tcg`"
	probKernelBoot = "must be `auto`, `pvh` or `bzimage`"
	probArch       = "must be `x86_64` (the only supported architecture)"
	probMachine    = "must be `q35`, `pc` or `microvm`"
	probFirmware   = "must be `auto`, `qboot` or `seabios`"
	probPSI        = "must be a number from 0 to 100 (percent of `some avg10`; 0 disables throttling)"
	probRoots      = "must be an array of directory path strings"
	probTable      = "must be a table"
	probHome       = "starts with `~/` but $HOME is not set; use an absolute path"
)

// missing stands for a required value that is absent; render shows it as
// "nothing" instead of quoting it.
type missing struct{}

// render formats a TOML value for `got `<v>“: strings as written, other
// scalars in TOML spelling, arrays and tables compactly.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderQuoted(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderQuoted(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := sortedKeys(x)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " = " + renderQuoted(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(x)
	}
}

// renderQuoted is render with strings quoted, for values nested in arrays
// and tables and for messages that do not put the value in backticks.
func renderQuoted(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return render(v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// table reads the keys of one TOML table, remembers which it consumed so the
// rest can be reported as unknown, and formats problems for its location.
type table struct {
	m    map[string]any
	used map[string]bool
	// where prefixes generic messages: "profile `x`:" or "[provium]".
	where string
	// keyPrefix is prepended to key names in messages ("disks[0].").
	keyPrefix string
}

func newTable(m map[string]any, where string) *table {
	return &table{m: m, used: map[string]bool{}, where: where}
}

func (t *table) get(key string) (any, bool) {
	t.used[key] = true
	v, ok := t.m[key]
	return v, ok
}

// problem builds `<where> <key>: <problem>, got `<v>“.
func (t *table) problem(key, prob string, v any) error {
	if _, ok := v.(missing); ok {
		return fmt.Errorf("%s %s%s: %s, got nothing", t.where, t.keyPrefix, key, prob)
	}
	return fmt.Errorf("%s %s%s: %s, got `%s`", t.where, t.keyPrefix, key, prob, render(v))
}

// unknown returns the keys never asked for, sorted.
func (t *table) unknown() []string {
	var out []string
	for _, k := range sortedKeys(t.m) {
		if !t.used[k] {
			out = append(out, k)
		}
	}
	return out
}

// str reads an optional string; nonEmpty rejects "" (and whitespace-only).
func (t *table) str(key, prob string, nonEmpty bool) (string, bool, error) {
	v, ok := t.get(key)
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr || (nonEmpty && strings.TrimSpace(s) == "") {
		return "", false, t.problem(key, prob, v)
	}
	return s, true, nil
}

// enum reads an optional string restricted to allowed values.
func (t *table) enum(key, prob, def string, allowed ...string) (string, error) {
	v, ok := t.get(key)
	if !ok {
		return def, nil
	}
	s, _ := v.(string)
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", t.problem(key, prob, v)
}

func (t *table) boolean(key string, def bool) (bool, error) {
	v, ok := t.get(key)
	if !ok {
		return def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, t.problem(key, probBool, v)
	}
	return b, nil
}

// size reads a size given as a string ("512M") or integer bytes.
func (t *table) size(key string, def uint64) (uint64, error) {
	v, ok := t.get(key)
	if !ok {
		return def, nil
	}
	var (
		n   uint64
		err error
	)
	switch x := v.(type) {
	case string:
		n, err = units.ParseSize(x)
	case int64:
		n, err = units.SizeFromInt(x)
	default:
		err = errors.New("not a size")
	}
	if err != nil {
		return 0, t.problem(key, probSize, v)
	}
	return n, nil
}

// number reads an integer or float as float64; ok is false when absent.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x)
	}
	return 0, false
}
