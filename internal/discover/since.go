package discover

import (
	"fmt"
	"os"
)

// msgSinceStat is the --since usage error; the CLI prefixes "provium: ".
const msgSinceStat = "--since: cannot stat `%s`: %v"

// Since keeps the files whose mtime is strictly newer than ref's. A file
// that cannot be stat'ed any more is kept, so the run reports it rather
// than hiding it.
func Since(files []File, ref string) ([]File, error) {
	info, err := os.Stat(ref)
	if err != nil {
		return nil, fmt.Errorf(msgSinceStat, ref, causeOf(err))
	}
	refTime := info.ModTime()
	var out []File
	for _, f := range files {
		fi, err := os.Stat(f.Abs)
		if err != nil || fi.ModTime().After(refTime) {
			out = append(out, f)
		}
	}
	return out, nil
}
