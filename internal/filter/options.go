// Package filter decides, per test, whether the selection flags and the
// test's meta skip it (20-cli-config.md §3.2 stages 5–10, §3.3 texts, §8),
// and carries those flags to child processes through PROVIUM_TEST_FILTER.
package filter

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Options are the per-test selection flags.
type Options struct {
	IncludeSlow bool
	Tag         []string
	NoTag       []string
	TagMeta     []KV
	NoTagMeta   []KV
}

// Skip reasons (the skipped test's message), 20-cli-config.md §3.3.
const (
	reasonSkipMeta   = "skipped (meta.skip)"
	reasonSkipString = "skipped: %s"
	reasonSlow       = "filtered: slow tests skipped (pass --include-slow)"
	reasonNoTag      = "filtered: matched --no-tag (%s)"
	reasonTag        = "filtered: did not match --tag (%s)"
	reasonNoTagMeta  = "filtered: matched --no-tag-meta (%s)"
	reasonTagMeta    = "filtered: did not match any --tag-meta %s=\u2026"
)

// Decide runs stages 5–10 in order on one test's meta and returns the first
// reason to skip it. meta holds the converted Lua table: nil, bool, int64,
// float64, string, []any (keys 1..n) and map[string]any (string keys); a
// nil meta is a test without one.
func (o Options) Decide(meta map[string]any) (skip bool, reason string) {
	// 5: meta.skip
	switch v := meta["skip"].(type) {
	case string:
		return true, fmt.Sprintf(reasonSkipString, v)
	case bool, int64:
		if truthy(v) {
			return true, reasonSkipMeta
		}
	}
	// 6: meta.slow
	if truthy(meta["slow"]) && !o.IncludeSlow {
		return true, reasonSlow
	}
	// 7 and 8: tags; --no-tag is checked first so it wins.
	tags := tagsOf(meta["tags"])
	if len(o.NoTag) > 0 && anyIn(tags, o.NoTag) {
		return true, fmt.Sprintf(reasonNoTag, formatList(o.NoTag))
	}
	if len(o.Tag) > 0 && !anyIn(tags, o.Tag) {
		return true, fmt.Sprintf(reasonTag, formatList(o.Tag))
	}
	// 9: --no-tag-meta, first matching pair in flag order.
	for _, kv := range o.NoTagMeta {
		if metaHolds(meta[kv.Key], kv.Value) {
			return true, fmt.Sprintf(reasonNoTagMeta, kv)
		}
	}
	// 10: --tag-meta: values of one key OR together, keys AND together;
	// the first failing key in sorted order is named.
	if key, ok := firstUnmatchedKey(o.TagMeta, meta); !ok {
		return true, fmt.Sprintf(reasonTagMeta, key)
	}
	return false, ""
}

// truthy is the meta.slow / meta.skip flag rule: true or a non-zero
// integer. Floats, strings and tables do not count.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	}
	return false
}

// tagsOf reads meta.tags: one string or an array of strings; other values
// (and non-string elements) are ignored.
func tagsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// metaHolds is the --tag-meta match: the value is the string want, or an
// array holding it. Booleans, numbers and maps never match.
func metaHolds(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// firstUnmatchedKey returns the smallest key of pairs none of whose values
// meta holds; ok is true when every key matched (or pairs is empty).
func firstUnmatchedKey(pairs []KV, meta map[string]any) (key string, ok bool) {
	matched := map[string]bool{}
	for _, kv := range pairs {
		if _, seen := matched[kv.Key]; !seen {
			matched[kv.Key] = false
		}
		if metaHolds(meta[kv.Key], kv.Value) {
			matched[kv.Key] = true
		}
	}
	keys := make([]string, 0, len(matched))
	for k := range matched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !matched[k] {
			return k, false
		}
	}
	return "", true
}

// formatList renders a flag list as ["a", "b"].
func formatList(vals []string) string {
	quoted := make([]string, len(vals))
	for i, v := range vals {
		quoted[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
