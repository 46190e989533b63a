package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv, set for a re-executed test binary, makes it a program that starts a cluster in
// the work directory the variable names, says "ready", and runs until it is signalled, as
// `make dev` does.
const childEnv = "AUTH_OPERATOR_CLUSTER_TEST_CHILD"

func TestMain(m *testing.M) {
	RunHolderIfAsked()
	if work := os.Getenv(childEnv); work != "" {
		os.Exit(runChild(work))
	}
	os.Exit(m.Run())
}

// runChild starts a cluster and keeps it until SIGTERM or SIGINT, then stops it.
func runChild(work string) int {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{RepoRoot: root, ControlPlaneDir: controlPlaneDir(root), WorkDir: work})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting:", err)
		return 1
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	<-signals
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping:", err)
		return 1
	}
	return 0
}

func controlPlaneDir(root string) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(root, "bin")
}

// hostState is what a node could leave on the machine: its processes, mounts, network
// (links, routes, iptables and nftables rules), cgroups, kernel settings and files outside
// its folder.
type hostState map[string]string

func readHostState(t *testing.T, work string) hostState {
	t.Helper()
	s := hostState{}
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	s["links"] = run("ip", "-o", "link", "show")
	s["routes"] = run("ip", "route", "show", "table", "all")
	s["iptables"] = withoutCounters(run("iptables-save"))
	s["ip6tables"] = withoutCounters(run("ip6tables-save"))
	s["nftables"] = run("nft", "list", "ruleset")
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, work) || strings.Contains(line, "/var/lib/cni") {
			ours = append(ours, line)
		}
	}
	s["mounts"] = strings.Join(ours, "\n")
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupFS, "*", cgroupName))
	s["cgroups"] = strings.Join(hierarchies, " ")
	for _, k := range kernelSettings {
		v, _ := os.ReadFile(filepath.Join("/proc/sys", k))
		s["sysctl "+k] = strings.TrimSpace(string(v))
	}
	for _, f := range []string{"/var/lib/cni", "/var/log/pods", "/var/log/containers", hostStateFile, "/run/xtables.lock", filepath.Join(work, "run")} {
		_, err := os.Lstat(f)
		s["exists "+f] = fmt.Sprint(err == nil)
	}
	s["processes"] = strings.Join(processesUnder(t, work), "\n")
	return s
}

// withoutCounters drops iptables-save's comments and packet counters, which change by
// themselves.
func withoutCounters(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.Index(line, " ["); strings.HasPrefix(line, ":") && i > 0 {
			line = line[:i]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// processesUnder lists the processes whose executable or working directory is under dir, or
// that run a program of the node (the holder, a container's shim).
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(cmd, dir) || strings.HasPrefix(cmd, "auth-operator-node-holder") || strings.Contains(cmd, "containerd-shim") {
			out = append(out, pid+" "+cmd)
		}
	}
	return out
}

// diff lists the keys whose values differ.
func (s hostState) diff(other hostState) []string {
	var keys []string
	for k, v := range s {
		if other[k] != v {
			keys = append(keys, fmt.Sprintf("%s:\n  before: %q\n  after:  %q", k, v, other[k]))
		}
	}
	slices.Sort(keys)
	return keys
}

// TestCluster_EndingByAnySignalLeavesNothingOnTheHost starts a node in a child process, as
// `make dev` does, runs a pod on it, and ends the child by SIGTERM and, in a second run, by
// SIGKILL (no chance to clean up): either way the machine must be as before, no process,
// mount, link, route, iptables or nftables rule, cgroup, changed kernel setting or file of
// the node left, so that the next node starts as the first did.
func TestCluster_EndingByAnySignalLeavesNothingOnTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes node")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			// Not t.TempDir(): its path, named for the test, is too long for containerd's socket.
			work, err := os.MkdirTemp("", "aonode-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(work) })
			before := readHostState(t, work)
			child := exec.Command(self, "-test.run=^$")
			child.Env = append(os.Environ(), childEnv+"="+work)
			child.Stderr = os.Stderr
			stdout, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			started := time.Now()
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = child.Process.Kill() }()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ready" {
				t.Fatalf("the child did not start a node: %q %v (logs in %s)", line, err, work)
			}
			t.Logf("a node with the cluster DNS Ready in %s", time.Since(started).Round(100*time.Millisecond))
			during := readHostState(t, work)
			if len(before.diff(during)) == 0 {
				t.Fatal("the running node changed nothing this test reads: the test could not see a leftover")
			}
			if err := child.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			// After SIGKILL the holder tears the node down on its own: wait for it.
			deadline := time.Now().Add(time.Minute)
			var left []string
			for {
				left = before.diff(readHostState(t, work))
				if len(left) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if len(left) > 0 {
				holderLog, _ := os.ReadFile(filepath.Join(work, "logs", "holder.log"))
				t.Fatalf("after %s the host differs:\n%s\nholder log:\n%s", sig, strings.Join(left, "\n"), holderLog)
			}
			t.Logf("%s: the host is as before", sig)
		})
	}
}
