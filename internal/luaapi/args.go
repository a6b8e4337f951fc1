package luaapi

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/units"
)

// checkString returns argument i as a string or an error naming the site.
func checkString(L *lua.Thread, i int, site string) (string, error) {
	s, ok := L.ToString(i)
	if !ok {
		return "", fmt.Errorf("%s: expected a string, got %s", site, L.TypeName(i))
	}
	return s, nil
}

// Duration reads a duration argument (number of seconds or a string with a
// unit) with the error texts of 10-lua-api.md §1.
func Duration(L *lua.Thread, i int, site string) (time.Duration, error) {
	switch L.Type(i) {
	case lua.TypeNumber:
		if n, _ := L.ToInteger(i); L.IsInteger(i) && n < 0 {
			// An integer is shown as Lua shows it (-1, not -1.0).
			return 0, units.DurationRangeError(site, strconv.FormatInt(n, 10))
		}
		f, _ := L.ToNumber(i)
		d, err := units.SecondsToDuration(f)
		if err != nil {
			return 0, units.AtSite(err, site)
		}
		return d, nil
	case lua.TypeString:
		s, _ := L.ToString(i)
		d, err := units.ParseDuration(s)
		if err != nil {
			return 0, units.AtSite(err, site)
		}
		return d, nil
	}
	return 0, fmt.Errorf("%s: duration: cannot parse `%s` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)", site, L.TypeName(i))
}

// PositiveDuration is Duration where 0 is an error too.
func PositiveDuration(L *lua.Thread, i int, site string) (time.Duration, error) {
	d, err := Duration(L, i, site)
	if err != nil {
		return 0, err
	}
	if d == 0 {
		return 0, units.DurationRangeError(site, "0")
	}
	return d, nil
}

// FormatSeconds prints a number of seconds the way the spec's messages do:
// integral values without a fraction ("10"), others shortest ("0.5").
func FormatSeconds(d time.Duration) string {
	s := d.Seconds()
	if s == math.Trunc(s) {
		return fmt.Sprintf("%d", int64(s))
	}
	return fmt.Sprintf("%g", s)
}
