package lab

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// bootRecord is a VM's staged boot options as lab.json's `boot` object
// (30-runtime.md A12), so a lab restore puts back exactly what the VM was
// staged with, per-boot additions included (they persist, 10-lua-api.md).
// Values that JSON numbers would not carry exactly are strings (the RNG
// seed) or nanoseconds; file contents are bytes (base64 in JSON).
type bootRecord struct {
	Memory              *uint64      `json:"memory,omitempty"`
	CPUs                *int         `json:"cpus,omitempty"`
	KernelCmdline       *string      `json:"kernel_cmdline,omitempty"`
	KernelCmdlineAppend *string      `json:"kernel_cmdline_append,omitempty"`
	RNGSeed             string       `json:"rng_seed,omitempty"`
	InitialTime         *time.Time   `json:"initial_time,omitempty"`
	AgentTimeoutNs      *int64       `json:"agent_timeout_ns,omitempty"`
	Files               []fileRecord `json:"files,omitempty"`
	Disks               []DiskSpec   `json:"disks,omitempty"`
}

type fileRecord struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
	Mode    uint32 `json:"mode"`
}

// recordBootOpts renders o as lab.json's `boot` object.
func recordBootOpts(o BootOpts) (map[string]any, error) {
	r := bootRecord{
		Memory: o.Memory, CPUs: o.CPUs, KernelCmdline: o.KernelCmdline,
		KernelCmdlineAppend: o.KernelCmdlineAppend, InitialTime: o.InitialTime, Disks: o.Disks,
	}
	if o.RNGSeed != nil {
		r.RNGSeed = strconv.FormatUint(*o.RNGSeed, 10)
	}
	if o.AgentTimeout != nil {
		ns := int64(*o.AgentTimeout)
		r.AgentTimeoutNs = &ns
	}
	for _, f := range o.Files {
		r.Files = append(r.Files, fileRecord{Path: f.Path, Content: []byte(f.Content), Mode: f.Mode})
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("boot options: %w", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("boot options: %w", err)
	}
	return m, nil
}

// bootOptsFromRecord reads lab.json's `boot` object back.
func bootOptsFromRecord(m map[string]any) (BootOpts, error) {
	var o BootOpts
	data, err := json.Marshal(m)
	if err != nil {
		return o, fmt.Errorf("boot: %w", err)
	}
	var r bootRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return o, fmt.Errorf("boot: %w", err)
	}
	o.Memory, o.CPUs, o.KernelCmdline, o.KernelCmdlineAppend = r.Memory, r.CPUs, r.KernelCmdline, r.KernelCmdlineAppend
	o.InitialTime, o.Disks = r.InitialTime, r.Disks
	if r.RNGSeed != "" {
		seed, err := strconv.ParseUint(r.RNGSeed, 10, 64)
		if err != nil {
			return o, fmt.Errorf("boot.rng_seed: %w", err)
		}
		o.RNGSeed = &seed
	}
	if r.AgentTimeoutNs != nil {
		d := time.Duration(*r.AgentTimeoutNs)
		o.AgentTimeout = &d
	}
	for _, f := range r.Files {
		o.Files = append(o.Files, FileSpec{Path: f.Path, Content: string(f.Content), Mode: f.Mode})
	}
	return o, nil
}
