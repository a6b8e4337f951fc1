package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/units"
)

const (
	waitDefaultTimeout  = 10 * time.Second
	waitDefaultInterval = 100 * time.Millisecond
	errWaitTimeout      = "wait_until: %s not met within %ss"
	errWaitBadString    = "wait_until: bad %s string `%s` (expected number with ms/s/m/h suffix)"
)

// waitOpt reads a wait_until duration option.
func waitOpt(L *lua.Thread, opts int, field string, def time.Duration) (time.Duration, error) {
	L.RawGetField(opts, field)
	defer L.Pop(1)
	switch L.Type(-1) {
	case lua.TypeNil:
		return def, nil
	case lua.TypeString:
		s, _ := L.ToString(-1)
		d, err := units.ParseDuration(s)
		if err != nil {
			if de, ok := err.(*units.DurationError); ok && de.Range {
				return 0, units.AtSite(err, "wait_until")
			}
			return 0, fmt.Errorf(errWaitBadString, field, s)
		}
		return d, nil
	}
	return luaapi.Duration(L, L.GetTop(), "wait_until")
}

// luaWaitUntil implements wait_until(predicate, opts?) (10-lua-api.md §2.3).
func (fr *fileRun) luaWaitUntil(L *lua.Thread) (int, error) {
	if L.Type(1) != lua.TypeFunction {
		return 0, fmt.Errorf("wait_until: predicate must be a function, got %s", L.TypeName(1))
	}
	timeout, interval, desc := waitDefaultTimeout, waitDefaultInterval, "condition"
	if L.Type(2) == lua.TypeTable {
		var err error
		if timeout, err = waitOpt(L, 2, "timeout", timeout); err != nil {
			return 0, err
		}
		if interval, err = waitOpt(L, 2, "interval", interval); err != nil {
			return 0, err
		}
		L.RawGetField(2, "desc")
		if s, ok := L.ToStringMeta(-1); ok && !L.IsNoneOrNil(-1) {
			desc = s
		}
		L.Pop(1)
	} else if !L.IsNoneOrNil(2) {
		return 0, fmt.Errorf("wait_until: opts must be a table, got %s", L.TypeName(2))
	}
	ctx := L.Context()
	deadline := time.Now().Add(timeout)
	for {
		L.PushValue(1)
		if e := L.PCallValue(0, 1); e != nil {
			return 0, lua.Raise() // the predicate's error propagates unchanged
		}
		if L.ToBoolean(-1) {
			return 1, nil
		}
		L.Pop(1)
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if err := sleepCtx(ctx, min(interval, left)); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf(errWaitTimeout, desc, luaapi.FormatSeconds(timeout))
}

// sleepCtx sleeps d or until ctx ends, returning the cancellation cause.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
