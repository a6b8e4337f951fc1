package image

// shellTools are stand-ins for commands Debian's busybox-static lacks,
// keyed by name. Each is a POSIX sh script run by busybox's ash.
func shellTools() map[string]string {
	return map[string]string{
		// printenv [NAME...]: print the whole environment, or the value of
		// each NAME that is set; exit 1 if any is unset.
		"printenv": `#!/bin/sh
if [ $# -eq 0 ]; then exec env; fi
rc=0
for name in "$@"; do
	case "$name" in
	''|[0-9]*|*[!A-Za-z0-9_]*) rc=1; continue ;;
	esac
	eval "isset=\${$name+x}"
	if [ -n "$isset" ]; then
		eval "printf '%s\n' \"\$$name\""
	else
		rc=1
	fi
done
exit $rc
`,
	}
}
