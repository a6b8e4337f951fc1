package report

import (
	"strconv"
	"time"
)

// FormatDuration renders a budget the way a user wrote it, as short as it
// can be without losing precision: 300s, 1.5s, 500ms, 0.25ms. Whole seconds
// stay in seconds (`--timeout 10m` reads "600s") because the CLI's bare
// numbers are seconds.
func FormatDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Second && d > -time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
}
