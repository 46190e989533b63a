package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hiringo/auth-operator/test/localkubelet/devstack"
)

// minKeyPublishTime is the operator's --min-key-publish-time in the suite: the local kubelet
// updates a mounted Secret within about a second, so rotations need not wait the five minutes
// a real kubelet's propagation does.
const minKeyPublishTime = devstack.LocalMinKeyPublishTime

// stack is the one local system every test of the package shares; each test uses its
// own namespace.
var (
	stack *devstack.Stack
	kube  client.Client
)

func TestMain(m *testing.M) {
	// Run as the stack's etcd or kube-apiserver link, this becomes that binary.
	devstack.RunShimIfAsked()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	controlPlane := os.Getenv("KUBEBUILDER_ASSETS")
	if controlPlane == "" {
		controlPlane = filepath.Join(root, "bin")
	}
	work, err := os.MkdirTemp("", "auth-operator-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stack, err = devstack.Start(ctx, devstack.Options{
		RepoRoot:          root,
		ControlPlaneDir:   controlPlane,
		WorkDir:           work,
		MinKeyPublishTime: minKeyPublishTime,
		Progress:          func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting the local system:", err)
		return 1
	}
	code := 1
	defer func() {
		if code != 0 {
			dumpLogs()
		}
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local system:", err)
		}
	}()
	if kube, err = stack.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	code = m.Run()
	return code
}

// dumpLogs prints the tail of the operator's, the local kubelet's and the controllers'
// logs after a failure.
func dumpLogs() {
	logs := filepath.Join(stack.LogsDir(), "kube-controller-manager.log")
	for _, path := range []string{stack.ManagerLog, stack.RunnerLog, logs} {
		data, err := tailOf(path, 20000)
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "---- %s (tail) ----\n%s\n", path, data)
	}
}
