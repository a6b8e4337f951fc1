package accel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The probe child is the Provium binary itself, re-executed with these
// variables set. Using the environment (not argv) keeps the hidden mode out
// of every command-line parser.
const (
	envChild   = "PROVIUM_ACCEL_PROBE_CHILD"
	envDevice  = "PROVIUM_ACCEL_PROBE_DEVICE"
	envCPUInfo = "PROVIUM_ACCEL_PROBE_CPUINFO"
)

// KVM ioctl numbers: _IO(KVMIO=0xAE, nr). golang.org/x/sys/unix does not
// define them.
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// The child writes one "step <name>" line before each step that could block
// and one "result <json>" line at the end, so that a parent that gives up
// knows which step did not answer.
const (
	linePrefixStep   = "step "
	linePrefixResult = "result "
)

// MaybeRunProbeChild turns the current process into the KVM probe child when
// it was started as one, and never returns in that case. Every main function
// (and TestMain of packages that probe) calls it first.
func MaybeRunProbeChild() {
	if os.Getenv(envChild) != "1" {
		return
	}
	dev := envOr(envDevice, defaultDevice)
	cpuinfo := envOr(envCPUInfo, defaultCPUInfo)
	res := runChecks(os.Stdout, dev, cpuinfo)
	b, err := json.Marshal(res)
	if err != nil {
		os.Exit(2)
	}
	fmt.Fprintf(os.Stdout, "%s%s\n", linePrefixResult, b)
	os.Exit(0)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runChecks performs the probe in the current process. It may block forever
// on a broken host, which is why only the child calls it.
func runChecks(progress io.Writer, dev, cpuinfo string) Result {
	step := func(name string) { fmt.Fprintf(progress, "%s%s\n", linePrefixStep, name) }

	step("opening " + dev)
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{Reason: classifyOpenError(dev, err)}
	}
	defer unix.Close(fd)

	step("reading " + cpuinfo)
	info, err := os.ReadFile(cpuinfo)
	if err != nil {
		return Result{Reason: reasonIoctl(fmt.Sprintf("reading %s: %v", cpuinfo, err))}
	}
	if !hasVirtExtensions(info) {
		return Result{Reason: reasonNoVirtExt()}
	}

	step("KVM_GET_API_VERSION")
	v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if errno != 0 {
		return Result{Reason: reasonIoctl(fmt.Sprintf("KVM_GET_API_VERSION: %v", errno))}
	}
	if v != kvmAPIVersion {
		return Result{Reason: reasonIoctl(fmt.Sprintf("KVM_GET_API_VERSION returned %d, want %d", v, kvmAPIVersion))}
	}

	step("KVM_CREATE_VM")
	vm, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCreateVM, 0)
	if errno != 0 {
		return Result{Reason: reasonIoctl(fmt.Sprintf("KVM_CREATE_VM: %v", errno))}
	}
	unix.Close(int(vm))
	return Result{Usable: true}
}

func classifyOpenError(dev string, err error) Reason {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return reasonNoDevice(dev)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return reasonPermission(dev)
	}
	return reasonIoctl(fmt.Sprintf("opening %s: %v", dev, err))
}

// hasVirtExtensions looks for vmx (Intel) or svm (AMD) among the flags of
// /proc/cpuinfo; a word match, so "vmx_…" feature names do not count.
func hasVirtExtensions(cpuinfo []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, f := range strings.Fields(val) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}
