// Package luajson provides the Lua `json` global (10-lua-api.md §16, with
// the changes that follow upstream in docs/decisions.md):
// json.encode(v) and json.decode(s), implemented directly on the Lua stack.
//
// Stack discipline: a Go function called from Lua is only guaranteed
// LUA_MINSTACK (20) free stack slots, and internal/lua offers no
// lua_checkstack. Both directions therefore keep at most stackLevels nested
// tables on the Lua stack and park deeper ancestors in an auxiliary table,
// so nesting up to maxDepth never overflows the stack.
package luajson

import (
	"strconv"
	"strings"

	"github.com/provium/provium/internal/lua"
)

const (
	// maxDepth is the deepest table/array nesting accepted in either direction.
	maxDepth = 1000
	// stackLevels is how many nested tables stay on the Lua stack before
	// ancestors are parked in the auxiliary table; together with the handful
	// of temporaries each level needs it stays well under LUA_MINSTACK.
	stackLevels = 10
)

// Open sets the global `json` to a table holding encode and decode.
func Open(L *lua.Thread) {
	L.NewTable(0, 2)
	L.PushFunction(encode)
	L.RawSetField(-2, "encode")
	L.PushFunction(decode)
	L.RawSetField(-2, "decode")
	L.SetGlobal("json")
}

// keyKind classifies a Lua table key; the order of the constants is the
// tie-break order when two keys render to the same object key text.
type keyKind uint8

const (
	keyInt keyKind = iota
	keyFloat
	keyString
	keyBool
)

// key is one table key as seen by the encoder. It doubles as a path element
// for error messages.
type key struct {
	kind keyKind
	str  string  // string key, or the object key text of another key
	num  int64   // integer key; 1 for the boolean key true
	fnum float64 // float key
}

// renderPath formats a key path JSONPath style: $.name[3]["odd key"].
func renderPath(path []key) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, k := range path {
		switch k.kind {
		case keyInt:
			b.WriteByte('[')
			b.WriteString(strconv.FormatInt(k.num, 10))
			b.WriteByte(']')
		case keyFloat, keyBool:
			b.WriteByte('[')
			b.WriteString(k.str)
			b.WriteByte(']')
		default:
			if isIdent(k.str) {
				b.WriteByte('.')
				b.WriteString(k.str)
			} else {
				b.WriteByte('[')
				b.WriteString(strconv.Quote(k.str))
				b.WriteByte(']')
			}
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
