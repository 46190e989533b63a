package localkubelet

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// nodeLeaseNamespace is where kubelets keep their heartbeat Leases.
const nodeLeaseNamespace = "kube-node-lease"

// nodeLeaseDuration is the kubelet's default lease duration; the runner renews its Lease
// every quarter of it, as the kubelet does.
const nodeLeaseDuration = 40 * time.Second

// nodeCapacity is what the Node reports. The processes are not limited, so the figures
// only need to be large enough for the scheduler never to hold a pod back for them.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("64"),
	corev1.ResourceMemory:           resource.MustParse("256Gi"),
	corev1.ResourcePods:             resource.MustParse("250"),
	corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
}

// desiredNode is the Node the runner registers: ready, with capacity, the loopback
// address and the pod CIDR it hands pod addresses out of.
func desiredNode(name, podCIDR, version string, now time.Time) *corev1.Node {
	ts := metav1.NewTime(now.Truncate(time.Second))
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: ts, LastTransitionTime: ts}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			corev1.LabelHostname: name, corev1.LabelOSStable: runtime.GOOS, corev1.LabelArchStable: runtime.GOARCH,
		}},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Capacity:    nodeCapacity.DeepCopy(),
			Allocatable: nodeCapacity.DeepCopy(),
			Conditions: []corev1.NodeCondition{
				condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "the local kubelet is running pods as local processes"),
				condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "not measured"),
				condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "not measured"),
				condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "not measured"),
			},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: version, KubeProxyVersion: version, OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
				ContainerRuntimeVersion: "localkubelet://processes",
			},
		},
	}
}

// registerNode creates the runner's Node, or takes over one left by an earlier run.
func (r *Runner) registerNode(ctx context.Context) error {
	want := desiredNode(r.cfg.NodeName, r.cfg.PodCIDR, r.cfg.KubeletVersion, time.Now())
	err := r.client.Create(ctx, want.DeepCopy())
	if apierrors.IsAlreadyExists(err) {
		var have corev1.Node
		if err := r.client.Get(ctx, types.NamespacedName{Name: want.Name}, &have); err != nil {
			return fmt.Errorf("reading node %s: %w", want.Name, err)
		}
		have.Status = want.Status
		err = r.client.Status().Update(ctx, &have)
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", want.Name, err)
	}
	return r.renewLease(ctx)
}

// renewLease writes the node's heartbeat Lease, which the node lifecycle controller reads.
func (r *Runner) renewLease(ctx context.Context) error {
	var node corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.cfg.NodeName}, &node); err != nil {
		return fmt.Errorf("reading node: %w", err)
	}
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Namespace: nodeLeaseNamespace}}
	err := r.client.Get(ctx, client.ObjectKeyFromObject(lease), lease)
	switch {
	case apierrors.IsNotFound(err):
		lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		lease.Spec = coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(r.cfg.NodeName), LeaseDurationSeconds: ptr.To(int32(nodeLeaseDuration / time.Second)), RenewTime: &now,
		}
		err = r.client.Create(ctx, lease)
	case err == nil:
		lease.Spec.RenewTime = &now
		err = r.client.Update(ctx, lease)
	}
	if err != nil {
		return fmt.Errorf("renewing node lease: %w", err)
	}
	return nil
}

// heartbeat renews the Lease every quarter of its duration and refreshes the Ready
// condition's heartbeat every minute, until ctx ends.
func (r *Runner) heartbeat(ctx context.Context) {
	leaseTick := time.NewTicker(nodeLeaseDuration / 4)
	defer leaseTick.Stop()
	statusTick := time.NewTicker(time.Minute)
	defer statusTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseTick.C:
			if err := r.renewLease(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("node lease renewal failed", "err", err)
			}
		case <-statusTick.C:
			if err := r.refreshNodeStatus(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("node status update failed", "err", err)
			}
		}
	}
}

func (r *Runner) refreshNodeStatus(ctx context.Context) error {
	var node corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.cfg.NodeName}, &node); err != nil {
		return err
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for i := range node.Status.Conditions {
		node.Status.Conditions[i].LastHeartbeatTime = now
	}
	return r.client.Status().Update(ctx, &node)
}

// ipPool hands out the addresses of a pod CIDR, skipping the network address and the
// first host (the node's, by convention), and takes them back when pods go.
type ipPool struct {
	network *net.IPNet
	inUse   map[string]bool
}

func newIPPool(cidr string) (*ipPool, error) {
	_, network, err := net.ParseCIDR(cidr)
	if err != nil || network.IP.To4() == nil {
		return nil, fmt.Errorf("pod CIDR %q: an IPv4 CIDR such as 10.244.0.0/24 is needed", cidr)
	}
	return &ipPool{network: network, inUse: map[string]bool{}}, nil
}

func (p *ipPool) allocate() (net.IP, error) {
	base := p.network.IP.To4()
	ones, bits := p.network.Mask.Size()
	size := 1 << (bits - ones)
	for i := 2; i < size-1; i++ {
		ip := net.IPv4(base[0], base[1], base[2], base[3]).To4()
		n := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
		n += uint32(i)
		ip = net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)).To4()
		if !p.inUse[ip.String()] {
			p.inUse[ip.String()] = true
			return ip, nil
		}
	}
	return nil, fmt.Errorf("pod CIDR %s has no free address", p.network)
}

func (p *ipPool) release(ip net.IP) { delete(p.inUse, ip.String()) }
