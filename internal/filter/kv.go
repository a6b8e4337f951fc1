package filter

import (
	"fmt"
	"strings"
)

// msgBadKV is the usage error for a malformed --tag-meta/--no-tag-meta
// value (20-cli-config.md §3.9); the CLI prefixes "provium: ".
const msgBadKV = "--%s: expected KEY=VALUE, got %q (KEY must be non-empty)"

// KV is one --tag-meta or --no-tag-meta pair.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (kv KV) String() string { return kv.Key + "=" + kv.Value }

// ParseKV splits raw at its first "=" (so values may contain "="); flag is
// the flag name without dashes, used in the error.
func ParseKV(flag, raw string) (KV, error) {
	k, v, ok := strings.Cut(raw, "=")
	if !ok || k == "" {
		return KV{}, fmt.Errorf(msgBadKV, flag, raw)
	}
	return KV{Key: k, Value: v}, nil
}
