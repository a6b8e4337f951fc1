package runner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/provium/provium/internal/lua"
)

// prettyDepth bounds how deep the REPL prints nested tables.
const prettyDepth = 6

// Pretty renders the value at idx for the REPL: a table as readable
// nested `key = value` text (arrays as `{ a, b }`, keys sorted), userdata
// and tables with __tostring by their tostring, other values as tostring
// does.
func Pretty(L *lua.Thread, idx int) string {
	var sb strings.Builder
	p := &prettyPrinter{L: L, sb: &sb, seen: map[string]bool{}}
	p.value(L.AbsIndex(idx), 0, false)
	return sb.String()
}

type prettyPrinter struct {
	L    *lua.Thread
	sb   *strings.Builder
	seen map[string]bool // tables on the current path (cycles)
}

func (p *prettyPrinter) value(idx, depth int, nested bool) {
	L := p.L
	switch L.Type(idx) {
	case lua.TypeString:
		s, _ := L.ToString(idx)
		if nested {
			s = strconv.Quote(s)
		}
		p.sb.WriteString(s)
	case lua.TypeTable:
		if L.GetMetatable(idx) {
			L.RawGetField(-1, "__tostring")
			has := L.Type(-1) != lua.TypeNil
			L.Pop(2)
			if has {
				s, _ := L.ToStringMeta(idx)
				p.sb.WriteString(s)
				return
			}
		}
		p.table(idx, depth)
	default:
		s, _ := L.ToStringMeta(idx)
		p.sb.WriteString(s)
	}
}

type prettyKey struct {
	text  string
	num   int64
	isInt bool
}

func (p *prettyPrinter) table(idx, depth int) {
	L := p.L
	id, _ := L.ToStringMeta(idx)
	if p.seen[id] {
		p.sb.WriteString("<cycle " + id + ">")
		return
	}
	if depth >= prettyDepth {
		p.sb.WriteString("{…}")
		return
	}
	p.seen[id] = true
	defer delete(p.seen, id)

	n := int64(L.RawLen(idx))
	var keys []prettyKey
	count := 0
	L.PushNil()
	for L.Next(idx) {
		count++
		switch {
		case L.IsInteger(-2):
			k, _ := L.ToInteger(-2)
			keys = append(keys, prettyKey{text: strconv.FormatInt(k, 10), num: k, isInt: true})
		case L.Type(-2) == lua.TypeString:
			k, _ := L.ToString(-2)
			keys = append(keys, prettyKey{text: k})
		default:
			k, _ := L.ToStringMeta(-2)
			keys = append(keys, prettyKey{text: "[" + k + "]"})
		}
		L.Pop(1)
	}
	if count == 0 {
		p.sb.WriteString("{}")
		return
	}
	if int64(count) == n {
		// An array: one line when short, else one element per line.
		p.sb.WriteString("{ ")
		for i := int64(1); i <= n; i++ {
			if i > 1 {
				p.sb.WriteString(", ")
			}
			L.RawGetI(idx, i)
			p.value(L.GetTop(), depth+1, true)
			L.Pop(1)
		}
		p.sb.WriteString(" }")
		return
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if keys[i].isInt != keys[j].isInt {
			return keys[i].isInt
		}
		if keys[i].isInt {
			return keys[i].num < keys[j].num
		}
		return keys[i].text < keys[j].text
	})
	indent := strings.Repeat("  ", depth+1)
	p.sb.WriteString("{\n")
	for _, k := range keys {
		p.sb.WriteString(indent)
		if k.isInt {
			fmt.Fprintf(p.sb, "[%d] = ", k.num)
			L.RawGetI(idx, k.num)
		} else {
			if isIdent(k.text) {
				p.sb.WriteString(k.text + " = ")
			} else {
				p.sb.WriteString("[" + strconv.Quote(k.text) + "] = ")
			}
			L.PushString(k.text)
			L.RawGet(idx)
		}
		p.value(L.GetTop(), depth+1, true)
		L.Pop(1)
		p.sb.WriteString(",\n")
	}
	p.sb.WriteString(strings.Repeat("  ", depth) + "}")
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}
