package discover

import "strings"

// Filter keeps the files whose root-relative or display path contains any
// of subs (--filter, repeatable, OR). No subs keeps every file. The result
// keeps discovery order.
func Filter(files []File, subs []string) []File {
	if len(subs) == 0 {
		return files
	}
	var out []File
	for _, f := range files {
		for _, s := range subs {
			if strings.Contains(f.RootRel, s) || strings.Contains(f.Display, s) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}
