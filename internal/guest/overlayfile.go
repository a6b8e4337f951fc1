package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/provium/provium/internal/agentbin"
)

// OverlayFile writes the located agent's overlay (BuildOverlay) to a file
// in dir and returns its path, for profile build commands that take the
// agent out of it ($PROVIUM_OVERLAY, as upstream's dist/ overlay): the
// peios/integration-tests peinit profile extracts sbin/provium-agent with
// cpio. The name carries the content's hash, so an unchanged agent keeps
// the same file, size and mtime (build scripts fingerprint them).
func OverlayFile(ctx context.Context, l *agentbin.Locator, dir string) (string, error) {
	data, err := BuildOverlay(ctx, l)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(dir, "agent-overlay-"+hex.EncodeToString(sum[:8])+".cpio.gz")
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(data)) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("agent overlay file: %w", err)
	}
	if err := renameio.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("agent overlay file: %w", err)
	}
	return path, nil
}
