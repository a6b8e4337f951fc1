package vmm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/provium/provium/internal/sparse"
)

// SnapshotFiles are the files of one machine snapshot (40 §5). Packing them
// into a fixture file is internal/fixture's job.
type SnapshotFiles struct {
	// State is QEMU's migration stream: device state only on the fast path,
	// device state and RAM on the portable path.
	State string
	// RAM is a sparse copy of guest memory (fast path), "" on the portable
	// path.
	RAM string
}

const (
	migratePoll  = 5 * time.Millisecond
	snapFDName   = "provium-snap"
	ignoreShared = "x-ignore-shared"
)

// Snapshot saves the machine into dir (created if needed) and leaves it in
// the run state it had: a running guest is paused, saved and resumed (live
// snapshot), a paused one stays paused.
//
// Fast path (RAM in a shared file, the normal case): the stream skips RAM
// (x-ignore-shared) and the RAM file is copied sparsely while the guest is
// still stopped — after `cont` it would be a moving target. A machine that
// was itself restored maps its RAM privately (its file is the pristine
// snapshot, not its memory), so it takes the portable path: RAM goes into
// the stream.
func (m *Machine) Snapshot(ctx context.Context, dir string) (files SnapshotFiles, err error) {
	return m.SnapshotWith(ctx, dir, nil)
}

// SnapshotWith is Snapshot that also runs whileStopped after the state is
// saved and before the guest continues, so that files the guest writes
// (disk images) can be copied at the same moment as its memory.
func (m *Machine) SnapshotWith(ctx context.Context, dir string, whileStopped func() error) (files SnapshotFiles, err error) {
	defer func() {
		if err != nil {
			files, err = SnapshotFiles{}, fmt.Errorf("vmm: %s: snapshot: %w", m.cfg.Name, err)
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return files, err
	}
	status, err := m.status(ctx)
	if err != nil {
		return files, err
	}
	if status == "running" {
		if _, err := m.qmp.Execute(ctx, "stop", nil); err != nil {
			return files, err
		}
		// Resume on every path: a failed snapshot must not freeze the guest.
		defer func() {
			_, cerr := m.qmp.Execute(context.WithoutCancel(ctx), "cont", nil)
			if err == nil && cerr != nil {
				err = fmt.Errorf("resuming: %w", cerr)
			}
		}()
	}
	files, err = m.save(ctx, dir)
	if err == nil && whileStopped != nil {
		if err = whileStopped(); err != nil {
			files = SnapshotFiles{}
		}
	}
	return files, err
}

func (m *Machine) save(ctx context.Context, dir string) (SnapshotFiles, error) {
	fail := func(err error) (SnapshotFiles, error) { return SnapshotFiles{}, err }
	fast := !m.cfg.RAMPrivate
	files := SnapshotFiles{State: filepath.Join(dir, "state")}
	if err := m.setCapability(ctx, ignoreShared, fast); err != nil {
		return fail(err)
	}
	if err := m.migrateToFile(ctx, files.State); err != nil {
		return fail(err)
	}
	if fast {
		files.RAM = filepath.Join(dir, "ram")
		if err := sparse.Copy(m.cfg.RAMPath(), files.RAM); err != nil {
			return fail(fmt.Errorf("copying RAM: %w", err))
		}
	}
	return files, nil
}

// Restore starts a machine from a snapshot. cfg must describe the machine
// that was saved (same memory, cpus, devices, kernel); a fast-path snapshot's
// RAM file is mapped copy-on-write, so it stays pristine and many restores
// share its page cache. The machine is returned paused — connect to the agent
// first if wanted, then Resume.
func Restore(ctx context.Context, cfg Config, snap SnapshotFiles) (*Machine, error) {
	cfg.Incoming = true
	if snap.RAM != "" {
		cfg.RAMFile = snap.RAM
		cfg.RAMPrivate = true
	}
	m, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.loadState(ctx, snap); err != nil {
		m.Quit(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("vmm: %s: restore: %w", cfg.Name, err)
	}
	return m, nil
}

func (m *Machine) loadState(ctx context.Context, snap SnapshotFiles) error {
	if err := m.setCapability(ctx, ignoreShared, snap.RAM != ""); err != nil {
		return err
	}
	f, err := os.Open(snap.State)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := m.qmp.ExecuteWithFile(ctx, "getfd", map[string]any{"fdname": snapFDName}, f); err != nil {
		return err
	}
	if _, err := m.qmp.Execute(ctx, "migrate-incoming", map[string]any{"uri": "fd:" + snapFDName}); err != nil {
		return err
	}
	return m.waitMigration(ctx)
}

// migrateToFile streams the machine's state into path through a descriptor
// handed to QEMU (QEMU 7.2 has no file: URI; exec:cat races its own flush).
func (m *Machine) migrateToFile(ctx context.Context, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := m.qmp.ExecuteWithFile(ctx, "getfd", map[string]any{"fdname": snapFDName}, f); err != nil {
		return err
	}
	if _, err := m.qmp.Execute(ctx, "migrate", map[string]any{"uri": "fd:" + snapFDName}); err != nil {
		return err
	}
	if err := m.waitMigration(ctx); err != nil {
		return err
	}
	return f.Sync()
}

// waitMigration polls query-migrate until the migration (either direction)
// has completed or failed.
func (m *Machine) waitMigration(ctx context.Context) error {
	t := time.NewTicker(migratePoll)
	defer t.Stop()
	for {
		raw, err := m.qmp.Execute(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("decoding query-migrate: %w", err)
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-t.C:
		case <-m.exited:
			return fmt.Errorf("qemu exited during migration; stderr: %s", readTail(m.cfg.StderrFile(), stderrTailMax))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Machine) setCapability(ctx context.Context, name string, on bool) error {
	caps := map[string]any{"capabilities": []map[string]any{{"capability": name, "state": on}}}
	_, err := m.qmp.Execute(ctx, "migrate-set-capabilities", caps)
	return err
}

func (m *Machine) status(ctx context.Context) (string, error) {
	raw, err := m.qmp.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("decoding query-status: %w", err)
	}
	return st.Status, nil
}
