package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The faults a test may inject into the node, as an operator's crash, a node agent's restart
// or a network partition would: the test then observes their effects through the API.

// KillContainer kills a container's processes with SIGKILL, as a crash would; containerID is
// a pod status's containerd://ID. The kubelet then restarts it per the pod's restartPolicy.
func (c *Cluster) KillContainer(ctx context.Context, containerID string) error {
	id, ok := strings.CutPrefix(containerID, "containerd://")
	if !ok {
		return fmt.Errorf("container ID %q is not containerd's", containerID)
	}
	_, err := c.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
	return err
}

// RestartKubelet stops the kubelet (SIGTERM, as a service manager would) and starts it again,
// and returns once the new kubelet has renewed its Node's lease and reports the Node Ready;
// the pods keep running meanwhile.
func (c *Cluster) RestartKubelet(ctx context.Context) error {
	if err := c.stopProcess(procKubelet); err != nil {
		return err
	}
	restarted := time.Now()
	proc, err := c.runKubelet()
	if err != nil {
		return err
	}
	kube, err := c.Client()
	if err != nil {
		return err
	}
	return proc.waitFor(ctx, "a renewed lease and a Ready Node", 2*time.Minute, func(ctx context.Context) error {
		var lease coordinationv1.Lease
		if err := kube.Get(ctx, types.NamespacedName{Namespace: corev1.NamespaceNodeLease, Name: NodeName}, &lease); err != nil {
			return err
		}
		if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(restarted) {
			return fmt.Errorf("the Node's lease was last renewed at %v, before the restart", lease.Spec.RenewTime)
		}
		return c.nodeReady(ctx)
	})
}

// RestartContainerd stops containerd (SIGTERM) and starts it again; the containers keep
// running under their shims meanwhile.
func (c *Cluster) RestartContainerd(ctx context.Context) error {
	if err := c.stopProcess(procContainerd); err != nil {
		return err
	}
	return c.runContainerd(ctx)
}

func (c *Cluster) stopProcess(name string) error {
	c.mu.Lock()
	proc := c.procs[name]
	c.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("%s is not running", name)
	}
	return proc.stop(30 * time.Second)
}

// CutOff drops, inside the network namespace of a container's pod, every packet the pod sends
// to the addresses dsts (pod IPs), as a partition between that pod and those would; it
// returns the function that heals it. containerID is a pod status's containerd://ID.
func (c *Cluster) CutOff(ctx context.Context, containerID string, dsts ...string) (heal func(context.Context) error, err error) {
	pid, err := c.containerPID(ctx, containerID)
	if err != nil {
		return nil, err
	}
	inPod := func(args ...string) error {
		return runCommand("nsenter", append([]string{"--target", strconv.Itoa(pid), "--net", "--", "nft"}, args...)...)
	}
	const table = "auth-operator-cutoff"
	rules := []string{"add table inet " + table,
		"add chain inet " + table + " out { type filter hook output priority 0 ; policy accept ; }"}
	for _, d := range dsts {
		rules = append(rules, "add rule inet "+table+" out ip daddr "+d+" drop")
	}
	for _, r := range rules {
		if err := inPod(strings.Fields(r)...); err != nil {
			return nil, err
		}
	}
	return func(context.Context) error { return inPod("delete", "table", "inet", table) }, nil
}

// containerPID is the host pid of a container's first process.
func (c *Cluster) containerPID(ctx context.Context, containerID string) (int, error) {
	id, ok := strings.CutPrefix(containerID, "containerd://")
	if !ok {
		return 0, fmt.Errorf("container ID %q is not containerd's", containerID)
	}
	out, err := c.ctr(ctx, "tasks", "ls")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no running task of container %s", id)
}
