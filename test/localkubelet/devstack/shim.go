package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// shimEnv, set in the stack's environment, names the directory of the real etcd and
// kube-apiserver. envtest starts them with no way to set a parent-death signal, so it is
// pointed at links to the stack's own executable instead, which (see RunShimIfAsked) asks
// the kernel to kill it with its parent and then becomes the real binary: a stack killed
// with SIGKILL takes its control plane with it.
const shimEnv = "AUTH_OPERATOR_DEVSTACK_EXEC_DIR"

// prSetPdeathsig is prctl's PR_SET_PDEATHSIG.
const prSetPdeathsig = 1

// RunShimIfAsked must be the first call of a program that starts a Stack (hack/dev, the
// e2e test's TestMain). Run as one of the stack's control-plane links, it sets the
// parent-death signal and executes the real binary of that name; it never returns then.
// Otherwise it returns at once.
func RunShimIfAsked() {
	dir := os.Getenv(shimEnv)
	name := filepath.Base(os.Args[0])
	if dir == "" || (name != "etcd" && name != "kube-apiserver") {
		return
	}
	// The parent-death signal belongs to one thread, and survives execve only on the thread
	// that calls it: both must happen on the same one.
	runtime.LockOSThread()
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "%s: setting the parent-death signal: %v\n", name, errno)
		os.Exit(1)
	}
	if os.Getppid() != parent {
		// The parent died before the signal was set: nobody would stop this process.
		os.Exit(1)
	}
	if err := os.Unsetenv(shimEnv); err != nil {
		os.Exit(1)
	}
	real := filepath.Join(dir, name)
	err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "%s: executing %s: %v\n", name, real, err)
	os.Exit(1)
}

// shimDir makes a directory of links named etcd and kube-apiserver to the running
// executable, for envtest's BinaryAssetsDirectory, and sets shimEnv to the real binaries'
// directory for the children.
func shimDir(workDir, realDir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the running executable: %w", err)
	}
	dir := filepath.Join(workDir, "controlplane")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		link := filepath.Join(dir, name)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			return "", fmt.Errorf("linking %s: %w", link, err)
		}
	}
	abs, err := filepath.Abs(realDir)
	if err != nil {
		return "", err
	}
	if err := os.Setenv(shimEnv, abs); err != nil {
		return "", err
	}
	return dir, nil
}

// StopWithParent asks the kernel to send this process SIGTERM when its parent dies (the
// make of `make dev`, even when that is killed with SIGKILL), so that it stops the stack
// as on Ctrl-C.
func StopWithParent() error {
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0); errno != 0 {
		return fmt.Errorf("setting the parent-death signal: %w", errno)
	}
	if os.Getppid() != parent {
		return fmt.Errorf("the parent process exited at start")
	}
	return nil
}
