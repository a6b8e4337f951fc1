package lab

import (
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/provium/provium/internal/units"
)

// BootOpts are a VM's staged boot options (10-lua-api.md §5.2). A nil pointer
// means "not given": the profile (or the built-in default) decides at boot.
type BootOpts struct {
	Memory              *uint64        // bytes, rounded up to a MiB
	CPUs                *int           // ≥ 1
	KernelCmdline       *string        // replaces the profile's base cmdline
	KernelCmdlineAppend *string        // appended with one space
	RNGSeed             *uint64        // virtio-rng seed (the Lua int's bits)
	InitialTime         *time.Time     // guest wall clock at init; time-controlled VM
	AgentTimeout        *time.Duration // agent wait at boot, reset, restore
	Files               []FileSpec     // one per path, in first-given order
	Disks               []DiskSpec     // one per id, in first-given order
}

// FileSpec is one file placed in the guest before init runs.
type FileSpec struct {
	Path    string // absolute and clean
	Content string // bytes
	Mode    uint32 // permission bits, 0..0o7777
}

// DefaultFileMode is the mode of a boot file given without `mode`.
const DefaultFileMode = 0o644

// DiskSource says where a boot disk's image comes from; exactly one is given.
type DiskSource string

const (
	DiskPath     DiskSource = "path"     // an existing image, used in place
	DiskScratch  DiskSource = "scratch"  // a new blank sparse image of Size bytes
	DiskTemplate DiskSource = "template" // an image copied per boot
)

// DiskSpec is one boot disk entry.
type DiskSpec struct {
	ID       string
	Source   DiskSource
	Path     string // for DiskPath and DiskTemplate
	Size     uint64 // for DiskScratch, bytes
	ReadOnly bool
	Mediated bool // served through the NBD server (guest-visible faults)
}

// Boot option error texts. Indexes in messages are Lua array positions
// (1-based), the ones a test author sees in their table; default disk ids are
// 0-based (`boot0`) as the spec fixes.
const (
	errFmtUnknownBootKey  = "boot_opts: unknown key `%s`"
	errFmtDiskExactlyOne  = "boot_opts.disks[%d]: exactly one of path, scratch, template"
	errFmtBootType        = "boot_opts.%s: expected %s, got %s"
	errFmtBootCPUs        = "boot_opts.cpus: must be an integer >= 1 (got %s)"
	errFmtBootSize        = "boot_opts.%s: %v"
	errFmtBootFinite      = "boot_opts.initial_time: must be a finite number (got %s)"
	errFmtBootTimeRange   = "boot_opts.initial_time: %s is out of range"
	errFmtAgentTimeout    = "boot_opts.agent_timeout: must be a finite number > 0 (got %s)"
	errFmtEntryType       = "boot_opts.%s[%d]: expected a table, got %s"
	errFmtEntryUnknownKey = "boot_opts.%s[%d]: unknown key `%s`"
	errFmtFilePath        = "boot_opts.files[%d]: path `%s` must be absolute and clean (no `.`, `..`, `//`, NUL or trailing `/`)"
	errFmtFilePathType    = "boot_opts.files[%d]: path must be a string, got %s"
	errFmtFileContent     = "boot_opts.files[%d] (`%s`): content must be a string, got %s"
	errFmtFileMode        = "boot_opts.files[%d] (`%s`): mode must be an integer in 0..0o7777 (got %s)"
	errFmtDiskField       = "boot_opts.disks[%d]: %s must be %s, got %s"
	errFmtDiskDupID       = "boot_opts.disks[%d]: duplicate disk id `%s`"
)

// ParseBootOpts validates a boot-options table converted from Lua. Every key is
// checked; the first problem is returned, naming the key (and entry) at fault.
func ParseBootOpts(m map[string]any) (BootOpts, error) {
	var o BootOpts
	// Sorted keys make the reported error deterministic when several are bad.
	for _, k := range sortedKeys(m) {
		v := m[k]
		if v == nil {
			continue // an explicit nil is the same as leaving the key out
		}
		if err := o.parseKey(k, v); err != nil {
			return BootOpts{}, err
		}
	}
	return o, nil
}

func (o *BootOpts) parseKey(k string, v any) error {
	switch k {
	case "memory":
		n, err := parseSizeValue("memory", v)
		if err != nil {
			return err
		}
		n = units.RoundUpMiB(n)
		o.Memory = &n
	case "cpus":
		n, ok := asInteger(v)
		if !ok {
			if _, isNum := asNumber(v); !isNum {
				return fmt.Errorf(errFmtBootType, k, "integer", luaTypeName(v))
			}
		}
		if !ok || n < 1 || n > math.MaxInt32 {
			return fmt.Errorf(errFmtBootCPUs, luaValueString(v))
		}
		c := int(n)
		o.CPUs = &c
	case "kernel_cmdline", "kernel_cmdline_append":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf(errFmtBootType, k, "string", luaTypeName(v))
		}
		if k == "kernel_cmdline" {
			o.KernelCmdline = &s
		} else {
			o.KernelCmdlineAppend = &s
		}
	case "rng_seed":
		n, ok := asInteger(v)
		if !ok {
			return fmt.Errorf(errFmtBootType, k, "integer", luaTypeName(v))
		}
		seed := uint64(n) // Lua integers are 64-bit; keep the bits
		o.RNGSeed = &seed
	case "initial_time":
		t, err := parseInitialTime(v)
		if err != nil {
			return err
		}
		o.InitialTime = &t
	case "agent_timeout":
		f, ok := asNumber(v)
		if !ok {
			return fmt.Errorf(errFmtBootType, k, "number", luaTypeName(v))
		}
		// The upper bound keeps the conversion to time.Duration exact.
		if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf(errFmtAgentTimeout, luaValueString(v))
		}
		d := time.Duration(f * float64(time.Second))
		o.AgentTimeout = &d
	case "files":
		files, err := parseFiles(v)
		if err != nil {
			return err
		}
		o.Files = files
	case "disks":
		disks, err := parseDisks(v)
		if err != nil {
			return err
		}
		o.Disks = disks
	default:
		return fmt.Errorf(errFmtUnknownBootKey, k)
	}
	return nil
}

// parseSizeValue reads a size (§1 Sizes): integer bytes or a unit string.
func parseSizeValue(field string, v any) (uint64, error) {
	var (
		n   uint64
		err error
	)
	switch x := v.(type) {
	case int64:
		n, err = units.SizeFromInt(x)
	case float64:
		n, err = units.SizeFromFloat(x)
	case string:
		n, err = units.ParseSize(x)
	default:
		return 0, fmt.Errorf(errFmtBootType, field, `size (integer bytes or a string like "512M")`, luaTypeName(v))
	}
	if err != nil {
		return 0, fmt.Errorf(errFmtBootSize, field, err)
	}
	return n, nil
}

func parseInitialTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case int64:
		return time.Unix(x, 0).UTC(), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return time.Time{}, fmt.Errorf(errFmtBootFinite, luaValueString(x))
		}
		// Beyond ±2^62 s the nanosecond split below would overflow.
		if math.Abs(x) >= 1<<62 {
			return time.Time{}, fmt.Errorf(errFmtBootTimeRange, luaValueString(x))
		}
		sec := math.Floor(x)
		nsec := math.Round((x - sec) * 1e9)
		return time.Unix(int64(sec), int64(nsec)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf(errFmtBootType, "initial_time", "number", luaTypeName(v))
}

func parseFiles(v any) ([]FileSpec, error) {
	arr, ok := asArray(v)
	if !ok {
		return nil, fmt.Errorf(errFmtBootType, "files", "an array of {path=, content=, mode=?}", luaTypeName(v))
	}
	var files []FileSpec
	for i, e := range arr {
		pos := i + 1
		t, ok := asTable(e)
		if !ok {
			return nil, fmt.Errorf(errFmtEntryType, "files", pos, luaTypeName(e))
		}
		f, err := parseFile(pos, t)
		if err != nil {
			return nil, err
		}
		files = mergeFiles(files, []FileSpec{f})
	}
	return files, nil
}

func parseFile(pos int, t map[string]any) (FileSpec, error) {
	for _, k := range sortedKeys(t) {
		switch k {
		case "path", "content", "mode":
		default:
			return FileSpec{}, fmt.Errorf(errFmtEntryUnknownKey, "files", pos, k)
		}
	}
	p, ok := t["path"].(string)
	if !ok {
		return FileSpec{}, fmt.Errorf(errFmtFilePathType, pos, luaTypeName(t["path"]))
	}
	if !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return FileSpec{}, fmt.Errorf(errFmtFilePath, pos, p)
	}
	content, ok := t["content"].(string)
	if !ok {
		return FileSpec{}, fmt.Errorf(errFmtFileContent, pos, p, luaTypeName(t["content"]))
	}
	f := FileSpec{Path: p, Content: content, Mode: DefaultFileMode}
	if mv, given := t["mode"]; given && mv != nil {
		n, ok := asInteger(mv)
		if !ok || n < 0 || n > 0o7777 {
			return FileSpec{}, fmt.Errorf(errFmtFileMode, pos, p, luaValueString(mv))
		}
		f.Mode = uint32(n)
	}
	return f, nil
}

func parseDisks(v any) ([]DiskSpec, error) {
	arr, ok := asArray(v)
	if !ok {
		return nil, fmt.Errorf(errFmtBootType, "disks", "an array of disk entries", luaTypeName(v))
	}
	disks := make([]DiskSpec, 0, len(arr))
	seen := make(map[string]bool, len(arr))
	for i, e := range arr {
		pos := i + 1
		t, ok := asTable(e)
		if !ok {
			return nil, fmt.Errorf(errFmtEntryType, "disks", pos, luaTypeName(e))
		}
		d, err := parseDisk(i, t)
		if err != nil {
			return nil, err
		}
		if seen[d.ID] {
			return nil, fmt.Errorf(errFmtDiskDupID, pos, d.ID)
		}
		seen[d.ID] = true
		disks = append(disks, d)
	}
	return disks, nil
}

// parseDisk reads entry i (0-based) of boot_opts.disks.
func parseDisk(i int, t map[string]any) (DiskSpec, error) {
	pos := i + 1
	for _, k := range sortedKeys(t) {
		switch k {
		case "id", "path", "scratch", "template", "readonly", "mediated":
		default:
			return DiskSpec{}, fmt.Errorf(errFmtEntryUnknownKey, "disks", pos, k)
		}
	}
	d := DiskSpec{ID: "boot" + strconv.Itoa(i)}
	if v, given := t["id"]; given && v != nil {
		s, ok := v.(string)
		if !ok || s == "" {
			return DiskSpec{}, fmt.Errorf(errFmtDiskField, pos, "id", "a non-empty string", luaValueString(v))
		}
		d.ID = s
	}
	sources := 0
	for _, src := range []DiskSource{DiskPath, DiskScratch, DiskTemplate} {
		if v, given := t[string(src)]; given && v != nil {
			sources++
			d.Source = src
		}
	}
	if sources != 1 {
		return DiskSpec{}, fmt.Errorf(errFmtDiskExactlyOne, pos)
	}
	switch d.Source {
	case DiskPath, DiskTemplate:
		v := t[string(d.Source)]
		s, ok := v.(string)
		if !ok || s == "" {
			return DiskSpec{}, fmt.Errorf(errFmtDiskField, pos, string(d.Source), "a non-empty string", luaValueString(v))
		}
		d.Path = s
	case DiskScratch:
		n, err := parseSizeValue(fmt.Sprintf("disks[%d].scratch", pos), t["scratch"])
		if err != nil {
			return DiskSpec{}, err
		}
		d.Size = n
	}
	for _, flag := range []struct {
		key string
		dst *bool
	}{{"readonly", &d.ReadOnly}, {"mediated", &d.Mediated}} {
		v, given := t[flag.key]
		if !given || v == nil {
			continue
		}
		b, ok := v.(bool)
		if !ok {
			return DiskSpec{}, fmt.Errorf(errFmtDiskField, pos, flag.key, "a boolean", luaValueString(v))
		}
		*flag.dst = b
	}
	return d, nil
}

// Merge returns o with other layered on top, the rule of vm:boot(opts) over
// the staged set: scalars given in other override; files and disks append,
// an entry with the same path / id replacing the earlier one in place.
func (o BootOpts) Merge(other BootOpts) BootOpts {
	out := o
	override(&out.Memory, other.Memory)
	override(&out.CPUs, other.CPUs)
	override(&out.KernelCmdline, other.KernelCmdline)
	override(&out.KernelCmdlineAppend, other.KernelCmdlineAppend)
	override(&out.RNGSeed, other.RNGSeed)
	override(&out.InitialTime, other.InitialTime)
	override(&out.AgentTimeout, other.AgentTimeout)
	out.Files = mergeFiles(o.Files, other.Files)
	out.Disks = mergeDisks(o.Disks, other.Disks)
	return out
}

// override sets *dst to src when src is given.
func override[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// mergeByKey appends add to base, an element whose key is already present
// replacing the earlier one in place. It never aliases its inputs, so a merged
// set can change without touching the sets it came from.
func mergeByKey[T any](base, add []T, key func(T) string) []T {
	out := append([]T(nil), base...)
	for _, x := range add {
		i := slices.IndexFunc(out, func(y T) bool { return key(y) == key(x) })
		if i >= 0 {
			out[i] = x
		} else {
			out = append(out, x)
		}
	}
	return out
}

func mergeFiles(base, add []FileSpec) []FileSpec {
	return mergeByKey(base, add, func(f FileSpec) string { return f.Path })
}

func mergeDisks(base, add []DiskSpec) []DiskSpec {
	return mergeByKey(base, add, func(d DiskSpec) string { return d.ID })
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// luaValueString renders a scalar the way Lua's tostring would, for messages.
func luaValueString(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		case x == math.Trunc(x) && math.Abs(x) < 1e15:
			return strconv.FormatFloat(x, 'f', 1, 64) // Lua prints 2.0, not 2
		}
		return strconv.FormatFloat(x, 'g', 14, 64)
	case string:
		return strconv.Quote(x)
	}
	return luaTypeName(v)
}
