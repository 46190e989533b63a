package devstack

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

func TestMain(m *testing.M) {
	// This test binary is the shim of TestShim_ChildDiesWithItsParent.
	RunShimIfAsked()
	os.Exit(m.Run())
}

// TestShim_ChildDiesWithItsParent starts the shim link named etcd from a shell that then
// exits: the "real" etcd (a sleep) that the shim became must be killed with it, as etcd and
// kube-apiserver are when the dev command or the e2e binary dies.
func TestShim_ChildDiesWithItsParent(t *testing.T) {
	work, real := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(real, "etcd"), []byte("#!/bin/sh\nexec sleep 120\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(shimEnv, "")
	links, err := shimDir(work, real)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(shimEnv) != real {
		t.Fatalf("%s = %q, want %q", shimEnv, os.Getenv(shimEnv), real)
	}
	// The shell starts the link in the background, prints its pid and exits at once.
	parent := exec.Command("/bin/sh", "-c", `"$0" & echo $!; sleep 1`, filepath.Join(links, "etcd"))
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	poll.Until(t, 10*time.Second, "the shim became the real binary", func() error {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			return err
		}
		if !strings.Contains(string(cmdline), "sleep") {
			return os.ErrNotExist
		}
		return nil
	})
	if err := parent.Wait(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the child killed with its parent", func() error {
		// Gone, or a zombie waiting for init to reap it.
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return nil
		}
		return os.ErrExist
	})
}
