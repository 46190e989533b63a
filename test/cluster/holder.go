package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// holderEnv, set in the environment of a re-executed program, makes it the node's holder
// (see RunHolderIfAsked); its value is the node's work directory.
const holderEnv = "AUTH_OPERATOR_NODE_HOLDER"

// holderReady is the line the holder writes once the namespaces are set up.
const holderReady = "ready"

// kernelSettings are the sysctls the kubelet sets on the machine at start (they are not
// per network namespace): the holder records them before and restores them at the end.
var kernelSettings = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// holderState is what the holder recorded at start, to undo at the end.
type holderState struct {
	// Sysctls are the values of kernelSettings before the node started.
	Sysctls map[string]string `json:"sysctls"`
	// CreatedVarLibCNI is set when the holder created /var/lib/cni on the host.
	CreatedVarLibCNI bool `json:"createdVarLibCNI"`
}

// RunHolderIfAsked must be the first call of a program that starts a cluster (hack/dev,
// the e2e's TestMain): re-executed as the node's holder, it holds the node's namespaces
// until the program that started it ends, then tears the node down, and exits. Otherwise
// it returns at once.
func RunHolderIfAsked() {
	work := os.Getenv(holderEnv)
	if work == "" {
		return
	}
	os.Exit(runHolder(paths{work: work}))
}

// runHolder runs in fresh network and mount namespaces (the starter's Unshareflags). It
// sets up the node's mounts and records the kernel settings, says it is ready on stdout,
// and waits until stdin closes (the starter ended or stopped the node) or a signal comes.
func runHolder(p paths) int {
	log := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000")+" holder: "+format+"\n", args...)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	state, hostRun, err := setUpNamespaces(p)
	if err != nil {
		log("setting up the node's namespaces: %v", err)
		teardown(p, state, hostRun, log)
		return 1
	}
	fmt.Println(holderReady)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(closed)
	}()
	select {
	case <-closed:
		log("the node's starter is gone: tearing the node down")
	case s := <-signals:
		log("%v: tearing the node down", s)
	}
	if !teardown(p, state, hostRun, log) {
		return 1
	}
	return 0
}

// hostStateFile records, on the host's /run (a tmpfs: it lives as long as the kernel settings
// it restores), what the node changed outside its folder, for the holder's teardown and, if
// the holder was killed too, for the next node's start to undo.
const hostStateFile = "/run/auth-operator-node.json"

// setUpNamespaces records the kernel settings the kubelet will change, makes the node's
// mounts in the holder's mount namespace (a private tmpfs over /run, the run folder's
// var-log over /var/log, var-lib-cni over /var/lib/cni, the node's resolv.conf), brings up
// its loopback and turns on forwarding. It returns the host's /run, open, where the teardown
// removes hostStateFile.
func setUpNamespaces(p paths) (holderState, *os.File, error) {
	state := holderState{Sysctls: map[string]string{}}
	for _, k := range kernelSettings {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			continue
		}
		state.Sysctls[k] = strings.TrimSpace(string(v))
	}
	if _, err := os.Stat("/var/lib/cni"); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll("/var/lib/cni", 0o755); err != nil {
			return state, nil, err
		}
		state.CreatedVarLibCNI = true
	}
	data, err := json.Marshal(state)
	if err != nil {
		return state, nil, err
	}
	if err := os.WriteFile(hostStateFile, data, 0o600); err != nil {
		return state, nil, err
	}
	hostRun, err := os.Open("/run")
	if err != nil {
		return state, nil, err
	}
	for _, d := range []string{p.varLog(), p.varLibCNI()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return state, hostRun, err
		}
	}
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
	}{
		{"tmpfs", "/run", "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV},
		{p.varLog(), "/var/log", "", syscall.MS_BIND},
		{p.varLibCNI(), "/var/lib/cni", "", syscall.MS_BIND},
		{p.nodeResolvConf(), "/etc/resolv.conf", "", syscall.MS_BIND},
	}
	for _, m := range mounts {
		if err := syscall.Mount(m.source, m.target, m.fstype, m.flags, ""); err != nil {
			return state, hostRun, fmt.Errorf("mounting %s on %s: %w", m.source, m.target, err)
		}
	}
	for _, s := range []struct{ key, value string }{
		{"net/ipv4/ip_forward", "1"},
		{"net/bridge/bridge-nf-call-iptables", "1"},
		{"net/bridge/bridge-nf-call-ip6tables", "1"},
	} {
		if err := os.WriteFile(filepath.Join("/proc/sys", s.key), []byte(s.value), 0o644); err != nil {
			return state, hostRun, fmt.Errorf("setting %s in the node's network namespace: %w", s.key, err)
		}
	}
	if err := runCommand("ip", "link", "set", "lo", "up"); err != nil {
		return state, hostRun, err
	}
	return state, hostRun, nil
}

// restoreHost undoes what the node changed on the host: the kernel settings and a
// /var/lib/cni it created (when empty).
func restoreHost(state holderState) error {
	var errs []error
	for k, v := range state.Sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", k, err))
		}
	}
	if state.CreatedVarLibCNI {
		if err := os.Remove("/var/lib/cni"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing /var/lib/cni: %w", err))
		}
	}
	return errors.Join(errs...)
}

// restoreStaleHost undoes what a node whose holder was killed left on the host, from
// hostStateFile.
func restoreStaleHost() error {
	data, err := os.ReadFile(hostStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var state holderState
	if err := json.Unmarshal(data, &state); err != nil {
		return fmt.Errorf("%s: %w", hostStateFile, err)
	}
	if err := restoreHost(state); err != nil {
		return err
	}
	return os.Remove(hostStateFile)
}

// teardown kills every process of the node, unmounts what the node mounted in the holder's
// namespace, removes the node's cgroups and run folder, and restores what the node changed
// on the host (hostRun is the host's /run, where hostStateFile is). The namespaces, and with
// them the node's network, go when the holder exits. It reports whether everything went.
func teardown(p paths, state holderState, hostRun *os.File, log func(string, ...any)) bool {
	ok := true
	fail := func(what string, err error) {
		if err != nil {
			log("%s: %v", what, err)
			ok = false
		}
	}
	fail("killing the node's processes", killCgroupProcesses(os.Getpid(), 30*time.Second))
	fail("unmounting the node's mounts", unmountUnder([]string{p.run(), "/var/lib/cni", "/var/log", "/etc/resolv.conf"}))
	// The holder leaves its own cgroup, the last process in the node's tree, for the root.
	fail("leaving the node's cgroup", os.WriteFile(filepath.Join(cgroupFS, trackingHierarchy, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644))
	fail("removing the node's cgroups", removeCgroups(10*time.Second))
	fail("restoring the host", restoreHost(state))
	if hostRun != nil {
		err := unix.Unlinkat(int(hostRun.Fd()), filepath.Base(hostStateFile), 0)
		if errors.Is(err, syscall.ENOENT) {
			err = nil
		}
		fail("removing "+hostStateFile, err)
		hostRun.Close()
	}
	fail("removing the run folder", os.RemoveAll(p.run()))
	return ok
}

// unmountUnder unmounts every mount of this mount namespace at or under one of roots,
// deepest first, detaching the busy ones.
func unmountUnder(roots []string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		target := unescapeMountPath(fields[4])
		for _, r := range roots {
			if target == r || strings.HasPrefix(target, r+"/") {
				targets = append(targets, target)
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.SliceStable(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	var errs []error
	for _, t := range targets {
		if err := syscall.Unmount(t, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
