package lab

import "fmt"

// errFmtNoVM is the miss of `lab:vm(name)`.
const errFmtNoVM = "lab:vm: no vm named `%s` in lab `%s` or its parent scopes"

// lookupOrder is the order kinds are tried when only a name is given (dot
// sugar, remove by name).
var lookupOrder = []MemberKind{KindVM, KindBridge, KindSubLab}

// VM is `lab:vm(name)`: the VM of that name in this lab or, failing that, the
// nearest parent scope.
func (l *Lab) VM(name string) (*VM, error) {
	if obj, _ := l.find(KindVM, name); obj != nil {
		return obj.(*VM), nil
	}
	return nil, fmt.Errorf(errFmtNoVM, name, l.Name())
}

// Lookup is the resource part of dot sugar (`lab.<key>`, §2.6): a VM (this lab,
// then its parents), else a bridge (same walk), else a sub-lab (same walk),
// else nil. It never creates and never errors; the adapter tries Lab methods,
// reserved callables and root config keys before calling it.
func (l *Lab) Lookup(key string) Object {
	for _, kind := range lookupOrder {
		if obj, _ := l.find(kind, key); obj != nil {
			return obj
		}
	}
	return nil
}
