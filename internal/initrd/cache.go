package initrd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// cacheKeyVersion changes whenever the layout of a cached base changes, so
// old entries are never mistaken for new ones.
const cacheKeyVersion = "provium-initrd-base-v1"

// Cache keeps merged "profile initrd ++ agent overlay" files keyed by the
// content of both parts, so booting many VMs of one profile concatenates the
// (possibly large) profile initrd once. Entries are written atomically
// (temp file + rename), so concurrent Provium processes sharing the directory
// never see a partial file.
type Cache struct {
	dir string
}

// NewCache returns a cache storing its files in dir (created on first use),
// typically <scratch_dir>/agent-overlay-cache.
func NewCache(dir string) *Cache { return &Cache{dir: dir} }

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Base returns the path of a cached file holding the profile initrd followed
// by overlay (a gzip segment, see Archive.Segment, or a prebuilt overlay
// file's bytes). profileInitrd may be empty: the overlay alone is then the
// initramfs. hit reports whether an existing entry was reused.
func (c *Cache) Base(profileInitrd string, overlay []byte) (path string, hit bool, err error) {
	profileSum := sha256.New()
	if profileInitrd != "" {
		if err := hashFile(profileSum, profileInitrd); err != nil {
			return "", false, err
		}
	}
	overlaySum := sha256.Sum256(overlay)
	key := sha256.New()
	fmt.Fprintf(key, "%s\n%x\n%x\n", cacheKeyVersion, profileSum.Sum(nil), overlaySum)
	name := "base-" + hex.EncodeToString(key.Sum(nil))[:32] + ".img"
	path = filepath.Join(c.dir, name)

	if _, err := os.Stat(path); err == nil {
		// Mark the entry used, so Prune keeps it.
		now := time.Now()
		_ = os.Chtimes(path, now, now)
		return path, true, nil
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", false, fmt.Errorf("initrd cache: %w", err)
	}
	err = writeAtomic(path, func(w io.Writer) error {
		if profileInitrd != "" {
			// Hash what is copied: a profile initrd rewritten between the
			// hash above and this copy must not be cached under the old key.
			again := sha256.New()
			if err := copyFile(io.MultiWriter(w, again), profileInitrd); err != nil {
				return err
			}
			if !bytes.Equal(again.Sum(nil), profileSum.Sum(nil)) {
				return fmt.Errorf("profile initrd %q changed while it was read", profileInitrd)
			}
		}
		_, err := w.Write(overlay)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("initrd cache: %w", err)
	}
	return path, false, nil
}

// Merge returns the initrd to boot: profile initrd ++ overlay ++ files.
// The first two come from the cache (see Base). When files is empty the
// cached file itself is returned and out is not written; otherwise out is
// written (atomically) with the cached base followed by files, a gzip
// segment of the per-boot files archive (and boot.json).
func (c *Cache) Merge(profileInitrd string, overlay, files []byte, out string) (string, error) {
	base, _, err := c.Base(profileInitrd, overlay)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return base, nil
	}
	err = writeAtomic(out, func(w io.Writer) error {
		if err := copyFile(w, base); err != nil {
			return err
		}
		_, err := w.Write(files)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("merge initrd: %w", err)
	}
	return out, nil
}

// Prune removes cache entries (and temporary files of crashed writers) not
// used for longer than maxAge, and returns how many it removed. A missing
// cache directory is not an error.
func (c *Cache) Prune(maxAge time.Duration) (int, error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune initrd cache: %w", err)
	}
	cutoff := time.Now().Add(-maxAge)
	removed := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "base-") && !strings.HasPrefix(name, ".base-") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("prune initrd cache: %w", err)
		}
		removed++
	}
	return removed, nil
}

func hashFile(h io.Writer, path string) error {
	if err := copyFile(h, path); err != nil {
		return fmt.Errorf("hash initrd: %w", err)
	}
	return nil
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// writeAtomic writes path through a temporary file in the same directory
// and renames it into place, so readers see the old file or the whole new
// one, never a prefix.
func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if err := fill(f); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
