package main

// The qemu-guest-agent half of B3 (50-performance.md): Debian's qemu-ga,
// packed with the shared libraries it links into an extra initrd segment of
// the default image, answers on its own virtio-serial port
// (org.qemu.guest_agent.0) of the same guest the Provium agent runs in.
// qemu-ga's half is timed like Provium's (warm-up, then back to back); the
// ratios come from interleaved pairs (Provium, qemu-ga, then qemu-ga,
// Provium, …) so both sides see the same machine noise.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/initrd"
	"github.com/provium/provium/internal/proto"
)

const (
	// qgaPortName is the port name qemu-ga's packaging expects.
	qgaPortName = "org.qemu.guest_agent.0"
	// qgaProfile is the bench-only profile: the image's "linux" profile with
	// the qemu-ga segment appended to its initrd.
	qgaProfile = "qga"
	// qgaGuestBin is where the segment puts qemu-ga in the guest.
	qgaGuestBin = "/usr/sbin/qemu-ga"
	// qgaHostBin is qemu-ga when the host has the Debian package installed.
	qgaHostBin = "/usr/sbin/qemu-ga"
	// qgaCallTimeout bounds one request/response on the qemu-ga channel.
	qgaCallTimeout = 30 * time.Second
)

// qgaResult is the qemu-ga half of B3 and the side-by-side comparison.
type qgaResult struct {
	Version string   `json:"qemu_ga_version"` // from guest-info
	Source  string   `json:"qemu_ga_source"`  // where the binary came from
	Libs    []string `json:"guest_files"`     // what the segment holds
	N       int      `json:"n"`
	// Ops is qemu-ga alone, measured like b3Result.Ops (warm-up, then N
	// back to back); index-aligned with Ratios.
	Ops []opResult `json:"ops"`
	// ExecPolls is the mean number of guest-exec-status calls per exec in
	// Ops (the one that reports exited included).
	ExecPolls float64 `json:"exec_status_polls_mean"`
	// PairProvium and PairQGA are the interleaved run (Provium, qemu-ga,
	// then qemu-ga, Provium, …): both sides see the same machine noise, so
	// the ratios come from them.
	Pairs       int        `json:"pairs"`
	PairProvium []opResult `json:"pair_provium_ops"`
	PairQGA     []opResult `json:"pair_qemu_ga_ops"`
	Ratios      []opRatio  `json:"ratios"`
}

// opRatio is Provium ÷ qemu-ga for one operation (target ≤ 0.5): from the
// pairs, and (Block*) Provium's half over qemu-ga's half.
type opRatio struct {
	Op          string  `json:"op"`
	Median      float64 `json:"median_ratio"`
	P99         float64 `json:"p99_ratio"`
	BlockMedian float64 `json:"halves_median_ratio"`
	BlockP99    float64 `json:"halves_p99_ratio"`
}

// qgaSetup is what the B3 boot needs to carry qemu-ga.
type qgaSetup struct {
	cfg    *config.Config // env.cfg plus the qgaProfile profile
	source string
	files  []string
}

// prepareQGA finds (or downloads) Debian's qemu-ga, packs it with its
// libraries into a segment appended to the image initrd, and returns a
// configuration with a profile booting that initrd.
func prepareQGA(ctx context.Context, env *benchEnv) (*qgaSetup, error) {
	bin, source, err := qgaBinary(ctx)
	if err != nil {
		return nil, err
	}
	seg, files, err := qgaSegment(ctx, bin)
	if err != nil {
		return nil, err
	}
	base, err := env.cfg.Profile("linux")
	if err != nil {
		return nil, err
	}
	img, err := os.ReadFile(base.Initrd)
	if err != nil {
		return nil, fmt.Errorf("qemu-ga initrd: %w", err)
	}
	path := filepath.Join(env.scratch, "qga-initrd")
	if err := os.WriteFile(path, append(img, seg...), 0o644); err != nil {
		return nil, fmt.Errorf("qemu-ga initrd: %w", err)
	}
	prof := *base
	prof.Name = qgaProfile
	prof.Initrd = path
	cfg := *env.cfg
	cfg.Profiles = maps.Clone(env.cfg.Profiles)
	cfg.Profiles[qgaProfile] = &prof
	return &qgaSetup{cfg: &cfg, source: source, files: files}, nil
}

// qgaBinary is the host's qemu-ga when the Debian package is installed,
// else the one from `apt-get download qemu-guest-agent`, unpacked once
// under ~/.cache/provium/bench/qemu-ga.
func qgaBinary(ctx context.Context) (path, source string, err error) {
	if _, err := os.Stat(qgaHostBin); err == nil {
		return qgaHostBin, "host package qemu-guest-agent " + debVersion(ctx), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", "", fmt.Errorf("qemu-ga: %w", err)
	}
	dir := filepath.Join(cache, "provium", "bench", "qemu-ga")
	root := filepath.Join(dir, "root")
	bin := filepath.Join(root, "usr", "sbin", "qemu-ga")
	debs, _ := filepath.Glob(filepath.Join(dir, "qemu-guest-agent_*.deb"))
	if _, err := os.Stat(bin); err == nil && len(debs) > 0 {
		return bin, "apt-get download: " + filepath.Base(debs[0]), nil
	}
	fmt.Fprintf(os.Stderr, "B3: downloading qemu-guest-agent into %s\n", dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", "", fmt.Errorf("qemu-ga: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("qemu-ga: %w", err)
	}
	dl := exec.CommandContext(ctx, "apt-get", "download", "qemu-guest-agent")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("qemu-ga: apt-get download qemu-guest-agent: %v\n%s", err, out)
	}
	if debs, _ = filepath.Glob(filepath.Join(dir, "qemu-guest-agent_*.deb")); len(debs) != 1 {
		return "", "", fmt.Errorf("qemu-ga: apt-get download left %d .debs in %s", len(debs), dir)
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("qemu-ga: dpkg-deb -x: %v\n%s", err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("qemu-ga: %s has no usr/sbin/qemu-ga", filepath.Base(debs[0]))
	}
	return bin, "apt-get download: " + filepath.Base(debs[0]), nil
}

func debVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "qemu-guest-agent").Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}

// qgaSegment packs qemu-ga at qgaGuestBin and, at the paths the host's ldd
// resolves them to, the shared libraries and dynamic loader it needs (the
// host is Debian 12 like the image, so these are the Debian builds).
// Nothing goes under an existing directory whose mode differs from the
// initrd's implicit 0755 (/tmp is 1777): a later segment would chmod it.
func qgaSegment(ctx context.Context, bin string) ([]byte, []string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("qemu-ga: ldd %s: %v\n%s", bin, err, out)
	}
	libs, err := parseLdd(string(out))
	if err != nil {
		return nil, nil, fmt.Errorf("qemu-ga: %w (install the libraries of the qemu-guest-agent package's Depends)", err)
	}
	a := initrd.NewArchive()
	add := func(guestPath, hostPath string) error {
		b, err := os.ReadFile(hostPath)
		if err != nil {
			return fmt.Errorf("qemu-ga segment: %w", err)
		}
		return a.AddFile(guestPath, b, 0o755)
	}
	files := []string{qgaGuestBin}
	if err := add(qgaGuestBin, bin); err != nil {
		return nil, nil, err
	}
	for _, l := range libs {
		if strings.HasPrefix(l, "/tmp/") {
			return nil, nil, fmt.Errorf("qemu-ga: library %s under /tmp", l)
		}
		if err := add(l, l); err != nil {
			return nil, nil, err
		}
		files = append(files, l)
	}
	seg, err := a.Segment()
	if err != nil {
		return nil, nil, err
	}
	return seg, files, nil
}

// parseLdd returns the absolute paths in ldd's output (libraries and the
// dynamic loader; the vDSO has none). A library ldd cannot find is an
// error.
func parseLdd(out string) ([]string, error) {
	var paths []string
	var missing []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if name, target, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				missing = append(missing, strings.TrimSpace(name))
				continue
			}
			line = target
		}
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			paths = append(paths, f[0])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ldd: not found: %s", strings.Join(missing, ", "))
	}
	return paths, nil
}

// qgaStartScript finds the port's device node (no udev in the guest, so no
// /dev/virtio-ports link) and starts qemu-ga as a daemon logging to
// /run/qemu-ga.log.
func qgaStartScript() string {
	return `dev=
for f in /sys/class/virtio-ports/*/name; do
	if [ "$(cat "$f")" = "` + qgaPortName + `" ]; then dev=${f%/name}; break; fi
done
[ -n "$dev" ] || { echo "no virtio-serial port named ` + qgaPortName + `" >&2; exit 1; }
node=/dev/${dev##*/}
[ -c "$node" ] || mknod "$node" c $(tr ':' ' ' < "$dev/dev") || exit 1
exec ` + qgaGuestBin + ` -m virtio-serial -p "$node" -d -f /run/qemu-ga.pid -t /run -l /run/qemu-ga.log`
}

// runQGA starts qemu-ga in the booted guest and connects to its port. It
// times qemu-ga's half alone, measured like Provium's half (half, already
// measured on the same guest), then the compared operations as interleaved
// pairs with the Provium agent, the source of the ratios.
func runQGA(ctx context.Context, qs *qgaSetup, m *guest.Machine, a *agentclient.Client, half []opResult, warmup, n int) (*qgaResult, error) {
	ports := m.VMM().Config().ExtraPorts
	if len(ports) != 1 || ports[0].Name != qgaPortName {
		return nil, fmt.Errorf("qemu-ga: the guest has no %s port (%v)", qgaPortName, ports)
	}
	r, err := a.Exec(ctx, proto.ExecReq{Cmd: qgaStartScript(), Shell: true})
	if err != nil {
		return nil, fmt.Errorf("qemu-ga: start: %w", err)
	}
	if r.ExitCode != 0 {
		return nil, fmt.Errorf("qemu-ga: start: exit %d: %s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := dialQGA(sctx, ports[0].Socket)
	if err != nil {
		log, _ := a.ReadFile(ctx, "/run/qemu-ga.log")
		return nil, fmt.Errorf("qemu-ga: %w; guest log:\n%s", err, log)
	}
	defer c.close()
	var info struct {
		Version string `json:"version"`
	}
	if err := c.call(ctx, "guest-info", nil, &info); err != nil {
		return nil, fmt.Errorf("qemu-ga: guest-info: %w", err)
	}
	fmt.Fprintf(os.Stderr, "B3: qemu-ga %s up (%s)\n", info.Version, qs.source)

	const readPath, provWrite, qgaWrite = "/tmp/b3-read", "/tmp/b3-write", "/tmp/b3-qga-write"
	page := bytes.Repeat([]byte("provium!"), 4096/8)
	if err := a.WriteFile(ctx, readPath, page); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	var polls, execs int
	// half names the operation of Provium's half (res.Ops) that is the
	// same work, for the ratio of the two halves.
	type pair struct {
		name, qgaName, half string
		prov                func(context.Context) error
		qga                 func(context.Context) error
	}
	pairs := []pair{
		{"ping (channel round trip)", "guest-ping (channel round trip)", "ping (channel round trip)",
			func(ctx context.Context) error { return a.Ping(ctx) },
			func(ctx context.Context) error { return c.call(ctx, "guest-ping", nil, nil) }},
		{`exec "/bin/true" (direct)`, "guest-exec /bin/true + guest-exec-status until exited", `exec "true" (direct)`,
			func(ctx context.Context) error {
				r, err := a.Exec(ctx, proto.ExecReq{Cmd: "/bin/true"})
				if err == nil && r.ExitCode != 0 {
					err = fmt.Errorf("exit code %d", r.ExitCode)
				}
				return err
			},
			func(ctx context.Context) error {
				p, err := c.exec(ctx, "/bin/true")
				polls += p
				execs++
				return err
			}},
		{"read_file 4 KiB", "guest-file-open/read/close 4 KiB", "read_file 4 KiB",
			func(ctx context.Context) error {
				b, err := a.ReadFile(ctx, readPath)
				if err == nil && !bytes.Equal(b, page) {
					err = fmt.Errorf("read %d bytes, not the page", len(b))
				}
				return err
			},
			func(ctx context.Context) error {
				b, err := c.readFile(ctx, readPath)
				if err == nil && !bytes.Equal(b, page) {
					err = fmt.Errorf("read %d bytes, not the page", len(b))
				}
				return err
			}},
		{"write_file 4 KiB", "guest-file-open/write/close 4 KiB", "write_file 4 KiB",
			func(ctx context.Context) error { return a.WriteFile(ctx, provWrite, page) },
			func(ctx context.Context) error { return c.writeFile(ctx, qgaWrite, page) }},
	}
	res := &qgaResult{Version: info.Version, Source: qs.source, Libs: qs.files, N: n, Pairs: n}
	timed := func(fn func(context.Context) error, into *[]float64) error {
		start := time.Now()
		err := fn(ctx)
		*into = append(*into, float64(time.Since(start).Nanoseconds())/1e3)
		return err
	}
	// qemu-ga alone, exactly as Provium's half was measured: warm-up, then
	// n back to back.
	for _, p := range pairs {
		fmt.Fprintf(os.Stderr, "B3: qemu-ga %s × %d\n", p.qgaName, n)
		for i := 0; i < warmup; i++ {
			if err := p.qga(ctx); err != nil {
				return nil, fmt.Errorf("qemu-ga %s: %w", p.qgaName, err)
			}
		}
		polls, execs = 0, 0 // count the timed execs only
		samples := make([]float64, 0, n)
		for i := 0; i < n; i++ {
			if err := timed(p.qga, &samples); err != nil {
				return nil, fmt.Errorf("qemu-ga %s: %w", p.qgaName, err)
			}
		}
		res.Ops = append(res.Ops, summarize(p.qgaName, samples))
		if execs > 0 {
			res.ExecPolls = float64(polls) / float64(execs)
		}
	}
	// Side by side: Provium then qemu-ga, then qemu-ga then Provium, …
	for k, p := range pairs {
		fmt.Fprintf(os.Stderr, "B3: %s vs qemu-ga × %d pairs\n", p.name, n)
		for i := 0; i < warmup; i++ {
			if err := p.prov(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			if err := p.qga(ctx); err != nil {
				return nil, fmt.Errorf("qemu-ga %s: %w", p.qgaName, err)
			}
		}
		provS := make([]float64, 0, n)
		qgaS := make([]float64, 0, n)
		for i := 0; i < n; i++ {
			var err1, err2 error
			if i%2 == 0 {
				err1 = timed(p.prov, &provS)
				err2 = timed(p.qga, &qgaS)
			} else {
				err2 = timed(p.qga, &qgaS)
				err1 = timed(p.prov, &provS)
			}
			if err1 != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err1)
			}
			if err2 != nil {
				return nil, fmt.Errorf("qemu-ga %s: %w", p.qgaName, err2)
			}
		}
		pr, qr := summarize(p.name, provS), summarize(p.qgaName, qgaS)
		res.PairProvium = append(res.PairProvium, pr)
		res.PairQGA = append(res.PairQGA, qr)
		r := opRatio{Op: p.name, Median: pr.MedianU / qr.MedianU, P99: pr.P99U / qr.P99U}
		if i := slices.IndexFunc(half, func(o opResult) bool { return o.Op == p.half }); i >= 0 {
			r.BlockMedian = half[i].MedianU / res.Ops[k].MedianU
			r.BlockP99 = half[i].P99U / res.Ops[k].P99U
		}
		res.Ratios = append(res.Ratios, r)
	}
	return res, nil
}

func summarize(name string, samples []float64) opResult {
	return opResult{Op: name, N: len(samples), MedianU: median(samples), P90U: percentile(samples, 90),
		P99U: percentile(samples, 99), MinU: minOf(samples), MeanU: mean(samples)}
}

// qgaClient speaks qemu-ga's protocol: one JSON command, one JSON response
// line ({"return": …} or {"error": …}), one at a time.
type qgaClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialQGA connects to QEMU's socket for the port and synchronises with
// guest-sync-delimited, retrying until qemu-ga answers or ctx ends: bytes
// sent before qemu-ga opened the port are delivered late, and their
// answers are skipped by id.
func dialQGA(ctx context.Context, sock string) (*qgaClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", sock, err)
	}
	c := &qgaClient{conn: conn, r: bufio.NewReader(conn)}
	for {
		id := rand.Int64N(1 << 40)
		req, err := qgaRequest("guest-sync-delimited", map[string]int64{"id": id})
		if err != nil {
			conn.Close()
			return nil, err
		}
		// 0xFF first resets qemu-ga's JSON parser after any partial input.
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write(append([]byte{0xff}, req...)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("guest-sync-delimited: %w", err)
		}
		err = readSyncReply(c.r, id)
		if err == nil {
			conn.SetDeadline(time.Time{})
			return c, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			conn.Close()
			return nil, fmt.Errorf("guest-sync-delimited: %w", err)
		}
		if ctx.Err() != nil {
			conn.Close()
			return nil, fmt.Errorf("guest-sync-delimited: no answer from qemu-ga: %w", ctx.Err())
		}
	}
}

func (c *qgaClient) close() error { return c.conn.Close() }

// qgaRequest encodes {"execute": cmd, "arguments": args} (no arguments when
// args is nil), newline-terminated.
func qgaRequest(cmd string, args any) ([]byte, error) {
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{cmd, args}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return append(b, '\n'), nil
}

// qgaError is qemu-ga's {"error": {"class": …, "desc": …}}.
type qgaError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qgaError) Error() string { return e.Class + ": " + e.Desc }

// decodeQGAResponse unmarshals the "return" member of one response line
// into out (skipped when out is nil) or returns its "error".
func decodeQGAResponse(line []byte, out any) error {
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *qgaError       `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("bad response %q: %w", line, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if resp.Return == nil {
		return fmt.Errorf("response without return: %q", line)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Return, out); err != nil {
		return fmt.Errorf("bad return %s: %w", resp.Return, err)
	}
	return nil
}

// readSyncReply reads up to the 0xFF delimiter qemu-ga puts before a
// guest-sync-delimited answer, then the answer, until one carries id
// (earlier attempts' answers are skipped).
func readSyncReply(r *bufio.Reader, id int64) error {
	for {
		if _, err := r.ReadBytes(0xff); err != nil {
			return err
		}
		line, err := r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var got int64
		if err := decodeQGAResponse(line, &got); err != nil {
			return err
		}
		if got == id {
			return nil
		}
	}
}

// call sends one command and decodes its response into out.
func (c *qgaClient) call(ctx context.Context, cmd string, args, out any) error {
	req, err := qgaRequest(cmd, args)
	if err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(qgaCallTimeout)
	}
	c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write(req); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if err := decodeQGAResponse(line, out); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// exec runs path with guest-exec (output captured, as the Provium agent's
// exec does) and polls guest-exec-status back to back until it reports
// exited; it returns how many polls that took.
func (c *qgaClient) exec(ctx context.Context, path string) (int, error) {
	var started struct {
		PID int `json:"pid"`
	}
	if err := c.call(ctx, "guest-exec", map[string]any{"path": path, "capture-output": true}, &started); err != nil {
		return 0, err
	}
	for polls := 1; ; polls++ {
		var st struct {
			Exited   bool `json:"exited"`
			ExitCode *int `json:"exitcode"`
			Signal   *int `json:"signal"`
		}
		if err := c.call(ctx, "guest-exec-status", map[string]int{"pid": started.PID}, &st); err != nil {
			return polls, err
		}
		if !st.Exited {
			if polls > 100000 {
				return polls, errors.New("guest-exec-status: never exited")
			}
			continue
		}
		if st.ExitCode == nil || *st.ExitCode != 0 {
			return polls, fmt.Errorf("guest-exec %s: exit code %v, signal %v", path, st.ExitCode, st.Signal)
		}
		return polls, nil
	}
}

// readFile reads a whole file: open, one read larger than the file (so
// the same call reports eof), close. A 4 KiB count would need a second
// read to see eof.
func (c *qgaClient) readFile(ctx context.Context, path string) ([]byte, error) {
	var h int64
	if err := c.call(ctx, "guest-file-open", map[string]string{"path": path, "mode": "r"}, &h); err != nil {
		return nil, err
	}
	var data []byte
	for {
		var rd struct {
			Count int    `json:"count"`
			Buf   string `json:"buf-b64"`
			EOF   bool   `json:"eof"`
		}
		if err := c.call(ctx, "guest-file-read", map[string]int64{"handle": h, "count": 65536}, &rd); err != nil {
			c.call(ctx, "guest-file-close", map[string]int64{"handle": h}, nil)
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(rd.Buf)
		if err != nil {
			c.call(ctx, "guest-file-close", map[string]int64{"handle": h}, nil)
			return nil, fmt.Errorf("guest-file-read: %w", err)
		}
		data = append(data, b...)
		if rd.EOF || rd.Count == 0 {
			break
		}
	}
	return data, c.call(ctx, "guest-file-close", map[string]int64{"handle": h}, nil)
}

// writeFile truncates and writes path: open "w", one base64 write, close.
func (c *qgaClient) writeFile(ctx context.Context, path string, data []byte) error {
	var h int64
	if err := c.call(ctx, "guest-file-open", map[string]string{"path": path, "mode": "w"}, &h); err != nil {
		return err
	}
	var wr struct {
		Count int `json:"count"`
	}
	err := c.call(ctx, "guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString(data)}, &wr)
	if err == nil && wr.Count != len(data) {
		err = fmt.Errorf("guest-file-write: wrote %d of %d bytes", wr.Count, len(data))
	}
	if cerr := c.call(ctx, "guest-file-close", map[string]int64{"handle": h}, nil); err == nil {
		err = cerr
	}
	return err
}

// writeQGAMarkdown renders the qemu-ga half and the ratio table.
func writeQGAMarkdown(w io.Writer, q *qgaResult) {
	fmt.Fprintf(w, "### B3 qemu-guest-agent half (qemu-ga %s, same guest, %d iterations each, one at a time)\n\n", q.Version, q.N)
	io.WriteString(w, "| operation | median | p99 | min | mean |\n|---|---|---|---|---|\n")
	for _, op := range q.Ops {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", op.Op, us(op.MedianU), us(op.P99U), us(op.MinU), us(op.MeanU))
	}
	fmt.Fprintf(w, "\nqemu-ga from %s; guest-exec-status calls per exec: %.2f (polled back to back).\n\n", q.Source, q.ExecPolls)
	fmt.Fprintf(w, "### B3 ratio Provium ÷ qemu-ga (%d interleaved pairs; target ≤ 0.5)\n\n", q.Pairs)
	io.WriteString(w, "| operation | Provium median | qemu-ga median | ratio | Provium p99 | qemu-ga p99 | ratio | halves' ratio (median, p99) |\n|---|---|---|---|---|---|---|---|\n")
	for i, r := range q.Ratios {
		p, g := q.PairProvium[i], q.PairQGA[i]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.2f, %.2f |\n", r.Op, us(p.MedianU), us(g.MedianU), ratioMark(r.Median),
			us(p.P99U), us(g.P99U), ratioMark(r.P99), r.BlockMedian, r.BlockP99)
	}
	io.WriteString(w, "\n")
}

func ratioMark(r float64) string {
	mark := "✗"
	if r <= 0.5 {
		mark = "✓"
	}
	return fmt.Sprintf("%.2f %s", r, mark)
}
