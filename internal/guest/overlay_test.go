package guest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/config"
)

func TestAgentOverlayPathIsUsedAsIs(t *testing.T) {
	t.Setenv(EnvOverlay, "")
	file := filepath.Join(t.TempDir(), "overlay.cpio.gz")
	os.WriteFile(file, []byte("prebuilt overlay"), 0o644)
	b := &Backend{}
	got, err := b.profileOverlay(context.Background(), &config.Profile{Name: "p", AgentOverlayPath: file})
	if err != nil || string(got) != "prebuilt overlay" {
		t.Fatalf("agent_overlay_path: %q %v", got, err)
	}
	t.Setenv(EnvOverlay, file)
	got, err = b.profileOverlay(context.Background(), &config.Profile{Name: "p"})
	if err != nil || string(got) != "prebuilt overlay" {
		t.Fatalf("%s: %q %v", EnvOverlay, got, err)
	}
	_, err = b.profileOverlay(context.Background(), &config.Profile{Name: "p", AgentOverlayPath: file + ".missing"})
	if err == nil || !strings.Contains(err.Error(), "profile `p`: agent overlay") {
		t.Fatalf("missing overlay: %v", err)
	}
}
