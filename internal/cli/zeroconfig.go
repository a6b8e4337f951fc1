package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/image"
)

// msgImplicitImage announces the first use of the default image as
// profile `linux` by a configuration that declares none.
const msgImplicitImage = "provium: profile `linux` is not declared; using the default image (%s)"

// withImplicitLinux gives cfg the default image as profile `linux` unless
// it declares one (zero-config start).
func withImplicitLinux(cfg *config.Config) {
	dir, err := image.DefaultDir()
	if err != nil {
		return
	}
	cfg.WithImplicitLinux(filepath.Join(dir, image.VmlinuxName), filepath.Join(dir, image.InitrdName), image.Cmdline)
}

// implicitImage builds (or reuses) the default image once per session,
// before the first boot of the implicit profile. Build progress goes to
// stderr; a reused image is silent but for one notice.
type implicitImage struct {
	once sync.Once
	err  error
}

func (ii *implicitImage) ensure(ctx context.Context, stderr io.Writer, quiet bool) error {
	ii.once.Do(func() {
		dir, err := image.DefaultDir()
		if err != nil {
			ii.err = err
			return
		}
		if !quiet {
			fmt.Fprintf(stderr, msgImplicitImage+"\n", dir)
		}
		progress := &dropReuse{w: stderr}
		if _, err := image.Build(ctx, image.Options{Out: dir, Progress: progress}); err != nil {
			ii.err = fmt.Errorf("profile `linux` (the default image): %w", err)
		}
	})
	return ii.err
}

// dropReuse passes image build progress through but for the line saying
// an existing image is reused.
type dropReuse struct{ w io.Writer }

func (d *dropReuse) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("image: reusing ")) {
		return len(p), nil
	}
	return d.w.Write(p)
}
