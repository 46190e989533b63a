package localkubelet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// The suite runs one real kube-apiserver and etcd (envtest, no controllers: the tests bind
// their pods to the runner's node and write the EndpointSlices themselves) and builds the real auth
// server once for every test of the package.
var (
	testEnv        *rest.Config
	authserverPath string
	redisPath      string
)

// controlPlaneDir is where `make controlplane` puts kube-apiserver and etcd.
func controlPlaneDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	abs, _ := filepath.Abs(filepath.Join("..", "..", "bin"))
	return abs
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	// The runner's informers log through controller-runtime; only errors matter here.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	assets := controlPlaneDir()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %s not found in %s: run `make controlplane` (or set KUBEBUILDER_ASSETS)\n", bin, assets)
			return 1
		}
	}
	var err error
	if redisPath, err = exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: redis-server is not on PATH: run `make redis-server` (Debian package redis-server)")
		return 1
	}
	tmp, err := os.MkdirTemp("", "localkubelet-suite-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	authserverPath = filepath.Join(tmp, "authserver")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", authserverPath, "github.com/hiringo/auth-operator/cmd/authserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: building the auth server:", err)
		return 1
	}

	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	testEnv, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	return m.Run()
}
