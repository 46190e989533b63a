package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupFS is where the host mounts its cgroup hierarchies (v1 controllers and, on a hybrid
// host, the unified one).
const cgroupFS = "/sys/fs/cgroup"

// The node's cgroups under cgroupName, in the pids hierarchy, which every process the node
// runs is found in: the holder, the node's own programs ("system"), and the pods (the
// kubelet's cgroup root, under which it makes "kubepods").
const (
	trackingHierarchy = "pids"
	holderCgroup      = "holder"
	systemCgroup      = "system"
)

// hierarchies lists the host's cgroup hierarchies (folders of /sys/fs/cgroup that are mounts).
func hierarchies() ([]string, error) {
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(cgroupFS, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cgroup hierarchy under %s", cgroupFS)
	}
	return out, nil
}

// createCgroups makes the node's cgroup in every hierarchy (the kubelet requires its cgroup
// root in each), with the holder's and the system's below it in the pids hierarchy. A new
// cpuset cgroup gets its parent's CPUs and memory nodes, without which no task may join.
func createCgroups() error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := filepath.Join(h, cgroupName)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("setting %s of %s: %w", f, dir, err)
				}
			}
		}
	}
	for _, sub := range []string{holderCgroup, systemCgroup} {
		dir := filepath.Join(cgroupFS, trackingHierarchy, cgroupName, sub)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// joinCgroup moves the process pid into the node's cgroup sub of the pids hierarchy.
func joinCgroup(sub string, pid int) error {
	procs := filepath.Join(cgroupFS, trackingHierarchy, cgroupName, sub, "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving process %d into %s: %w", pid, procs, err)
	}
	return nil
}

// cgroupPIDs lists the processes in the node's cgroup tree of one hierarchy.
func cgroupPIDs(hierarchy string) ([]int, error) {
	root := filepath.Join(hierarchy, cgroupName)
	var pids []int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// holderRunning returns the pid of a live holder of a node on this machine, if any.
func holderRunning() (int, bool) {
	data, err := os.ReadFile(filepath.Join(cgroupFS, trackingHierarchy, cgroupName, holderCgroup, "cgroup.procs"))
	if err != nil {
		return 0, false
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			return pid, true
		}
	}
	return 0, false
}

// killCgroupProcesses sends SIGKILL to every process of the node's cgroups, in every
// hierarchy (a container's processes are in the kubelet's pod cgroups), but the one
// with pid spare, until none is left or timeout passes.
func killCgroupProcesses(spare int, timeout time.Duration) error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		left := map[int]bool{}
		for _, h := range hs {
			pids, err := cgroupPIDs(h)
			if err != nil {
				return err
			}
			for _, pid := range pids {
				if pid != spare {
					left[pid] = true
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes of the node still alive after %s", len(left), timeout)
		}
		for pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroups removes the node's cgroup trees, deepest first, in every hierarchy. A
// cgroup whose processes have just died may refuse removal for a moment (EBUSY): retried.
func removeCgroups(timeout time.Duration) error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		var dirs []string
		for _, h := range hs {
			_ = filepath.WalkDir(filepath.Join(h, cgroupName), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		var last error
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("removing cgroup %s: %w", d, err)
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}
