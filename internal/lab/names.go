package lab

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// resourceNameRE is the shape of VM and bridge names. No dots: `<vm>.<bridge>`
// is a guest hostname, so a dot in either part would make it ambiguous.
var resourceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// reservedNames are the dot-sugar keys that resolve to callables before any
// resource lookup; a resource with one of these names could never be reached.
var reservedNames = map[string]bool{
	"pack":        true,
	"unpack":      true,
	"vm_fixture":  true,
	"lab_fixture": true,
}

// IsReservedName reports whether name is one of the dot-sugar keys reserved
// for callables (`pack`, `unpack`, `vm_fixture`, `lab_fixture`).
func IsReservedName(name string) bool { return reservedNames[name] }

const (
	errFmtBadResourceName = "%s: invalid %s name `%s` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)"
	errFmtBadLabName      = "%s: invalid lab name `%s` (must be non-empty, without `/` or whitespace)"
	errFmtReservedName    = "%s: %s name `%s` is reserved (pack, unpack, vm_fixture, lab_fixture)"
)

// validateVMName checks a VM name for the call site `call` (e.g. "lab:vm").
func validateVMName(call, name string) error {
	return validateResourceName(call, KindVM, name)
}

// validateBridgeName checks a bridge name for the call site `call`.
func validateBridgeName(call, name string) error {
	return validateResourceName(call, KindBridge, name)
}

func validateResourceName(call string, kind MemberKind, name string) error {
	if !resourceNameRE.MatchString(name) {
		return fmt.Errorf(errFmtBadResourceName, call, kind.noun(), name)
	}
	if IsReservedName(name) {
		return fmt.Errorf(errFmtReservedName, call, kind.noun(), name)
	}
	return nil
}

// validateLabName checks a sub-lab name for the call site `call`. Lab names are
// looser than resource names because they never become hostnames, but a `/`
// would break the `dc1/a` paths that name VMs in sub-labs.
func validateLabName(call, name string) error {
	if name == "" || strings.ContainsRune(name, '/') || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return fmt.Errorf(errFmtBadLabName, call, name)
	}
	if IsReservedName(name) {
		return fmt.Errorf(errFmtReservedName, call, KindSubLab.noun(), name)
	}
	return nil
}
