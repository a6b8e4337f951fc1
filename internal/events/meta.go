package events

import (
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Meta is a test's meta table (30-runtime.md C3). Values are MetaValues:
// nil (Null), bool, int64, float64, string (Str, valid UTF-8), []byte
// (Bytes), []any (Array) or map[string]any (Map). Encoding also accepts
// the other Go integer and float types and a string that is not valid
// UTF-8 (it becomes Bytes, as Lua strings do). A nil Meta encodes as an
// empty map: meta is always present.
type Meta map[string]any

// maxMetaDepth bounds nesting, as the Lua side does.
const maxMetaDepth = 32

// EncodeMsgpack writes the map with its keys sorted bytewise.
func (m Meta) EncodeMsgpack(enc *msgpack.Encoder) error {
	return encodeMap(enc, map[string]any(m), 0)
}

func encodeMap(enc *msgpack.Encoder, m map[string]any, depth int) error {
	if depth > maxMetaDepth {
		return fmt.Errorf("meta: nested deeper than %d", maxMetaDepth)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if err := enc.EncodeMapLen(len(keys)); err != nil {
		return err
	}
	for _, k := range keys {
		if err := enc.EncodeString(k); err != nil {
			return err
		}
		if err := encodeValue(enc, m[k], depth+1); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func encodeValue(enc *msgpack.Encoder, v any, depth int) error {
	switch x := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(x)
	case int:
		return enc.EncodeInt(int64(x))
	case int64:
		return enc.EncodeInt(x)
	case int32:
		return enc.EncodeInt(int64(x))
	case uint32:
		return enc.EncodeUint(uint64(x))
	case uint64:
		if x > math.MaxInt64 {
			return fmt.Errorf("integer %d does not fit i64", x)
		}
		return enc.EncodeUint(x)
	case float64:
		return enc.EncodeFloat64(x)
	case float32:
		return enc.EncodeFloat64(float64(x))
	case string:
		if !utf8.ValidString(x) {
			return enc.EncodeBytes([]byte(x))
		}
		return enc.EncodeString(x)
	case []byte:
		if x == nil {
			x = []byte{}
		}
		return enc.EncodeBytes(x)
	case []any:
		if depth > maxMetaDepth {
			return fmt.Errorf("nested deeper than %d", maxMetaDepth)
		}
		if err := enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, e := range x {
			if err := encodeValue(enc, e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []string:
		arr := make([]any, len(x))
		for i, e := range x {
			arr[i] = e
		}
		return encodeValue(enc, arr, depth)
	case map[string]any:
		return encodeMap(enc, x, depth)
	case Meta:
		return encodeMap(enc, x, depth)
	}
	return fmt.Errorf("unsupported value (%T)", v)
}

// DecodeMsgpack reads a map dispatching on each value's msgpack type:
// bin stays []byte even when valid UTF-8, every integer family becomes
// int64 (an unsigned value above the i64 range is an error), float32 and
// float64 become float64.
func (m *Meta) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := decodeValue(dec, 0)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*m = Meta{}
	case map[string]any:
		*m = Meta(x)
	default:
		return fmt.Errorf("meta: expected a map, got %T", v)
	}
	return nil
}

func decodeValue(dec *msgpack.Decoder, depth int) (any, error) {
	if depth > maxMetaDepth+1 {
		return nil, fmt.Errorf("meta: nested deeper than %d", maxMetaDepth)
	}
	c, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, dec.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		return dec.DecodeBool()
	case c == msgpcode.Float || c == msgpcode.Double:
		return dec.DecodeFloat64()
	case c == msgpcode.Uint64:
		u, err := dec.DecodeUint64()
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("meta: integer %d does not fit i64", u)
		}
		return int64(u), nil
	case msgpcode.IsFixedNum(c) || c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 ||
		c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64:
		return dec.DecodeInt64()
	case msgpcode.IsString(c):
		return dec.DecodeString()
	case msgpcode.IsBin(c):
		return dec.DecodeBytes()
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for i := 0; i < n; i++ {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, max(n, 0))
		for i := 0; i < n; i++ {
			k, err := dec.DecodeString()
			if err != nil {
				return nil, fmt.Errorf("meta: map key: %w", err)
			}
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("meta: unsupported msgpack type 0x%02x", c)
}
