package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	RunHolderIfAsked()
	os.Exit(m.Run())
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSmoke(t *testing.T) {
	root := repoRoot(t)
	work := t.TempDir()
	if w := os.Getenv("NODE_WORK"); w != "" {
		work = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := Start(ctx, Options{RepoRoot: root, ControlPlaneDir: filepath.Join(root, "bin"), WorkDir: work,
		Progress: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ready in %s", time.Since(start))
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}
