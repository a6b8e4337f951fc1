package discover

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// msgBadShard is the --shard usage error; the CLI prefixes "provium: ".
const msgBadShard = "--shard: expected I/N with 1 ≤ I ≤ N, got `%s`"

// ShardSpec is a parsed --shard I/N.
type ShardSpec struct {
	Index int // 1-based
	Count int
}

// ParseShard parses "I/N" with 1 ≤ I ≤ N.
func ParseShard(v string) (ShardSpec, error) {
	bad := fmt.Errorf(msgBadShard, v)
	is, ns, ok := strings.Cut(v, "/")
	if !ok {
		return ShardSpec{}, bad
	}
	i, err := parseCount(is)
	if err != nil {
		return ShardSpec{}, bad
	}
	n, err := parseCount(ns)
	if err != nil {
		return ShardSpec{}, bad
	}
	if i < 1 || i > n {
		return ShardSpec{}, bad
	}
	return ShardSpec{Index: i, Count: n}, nil
}

// parseCount accepts plain decimal digits only, so "+1" or " 1" are
// rejected rather than silently accepted.
func parseCount(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return strconv.Atoi(s)
}

// Shard keeps shard i of n (1-based): the file at position k (0-based) of
// the display-path-sorted list belongs to shard (k mod n)+1. Sorting by
// display path makes the split independent of argument order, so the same
// tree and flags split the same way on every machine. The result keeps
// discovery order. n < 1 keeps every file.
func Shard(files []File, i, n int) []File {
	if n < 1 {
		return files
	}
	order := make([]int, len(files))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool {
		return files[order[a]].Display < files[order[b]].Display
	})
	keep := make([]bool, len(files))
	for k, idx := range order {
		if k%n+1 == i {
			keep[idx] = true
		}
	}
	var out []File
	for idx, f := range files {
		if keep[idx] {
			out = append(out, f)
		}
	}
	return out
}
