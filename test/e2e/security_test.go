package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// wantRestrictedAndReady checks that the namespace enforces the restricted Pod Security
// Standard and that every pod in it is Ready while running every container as the standard
// asks: non-root, read-only root file system, no privilege escalation, every capability
// dropped, the runtime's seccomp profile. The API server admitted the pods and the kubelet
// ran them under these settings; a container that needs more fails to start or to be ready.
func wantRestrictedAndReady(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	var namespace corev1.Namespace
	if err := kube.Get(ctx, client.ObjectKey{Name: ns}, &namespace); err != nil {
		t.Fatal(err)
	}
	if namespace.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace %s enforces %q, want restricted", ns, namespace.Labels["pod-security.kubernetes.io/enforce"])
	}
	var pods corev1.PodList
	if err := kube.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	apps := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		apps[p.Labels[appLabel]]++
		if !podReady(&p) {
			t.Errorf("pod %s is not Ready", p.Name)
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if !strings.HasPrefix(cs.ContainerID, "containerd://") {
				t.Errorf("%s/%s has the container ID %q: want a container of the node's containerd", p.Name, cs.Name, cs.ContainerID)
			}
		}
		podSC := p.Spec.SecurityContext
		for _, c := range append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s/%s has no security context", p.Name, c.Name)
				continue
			}
			nonRoot := ptr.Deref(sc.RunAsNonRoot, podSC != nil && ptr.Deref(podSC.RunAsNonRoot, false))
			seccomp := sc.SeccompProfile
			if seccomp == nil && podSC != nil {
				seccomp = podSC.SeccompProfile
			}
			dropsAll := sc.Capabilities != nil && len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0
			if !nonRoot || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !dropsAll ||
				seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s/%s runs with %+v (pod %+v): want non-root, a read-only root, no privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp", p.Name, c.Name, sc, podSC)
			}
		}
	}
	t.Logf("pods of %s, all Ready under the restricted Pod Security Standard, in containerd's containers: %v", ns, apps)
}

// wantKubernetesNode checks that the cluster's one node is Kubernetes' own kubelet of the
// control plane's version on containerd 2, and Ready.
func wantKubernetesNode(t *testing.T) {
	t.Helper()
	var nodes corev1.NodeList
	if err := kube.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 {
		t.Fatalf("%d nodes, want the stack's one", len(nodes.Items))
	}
	n := nodes.Items[0]
	info := n.Status.NodeInfo
	version, err := clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://2.") || info.KubeletVersion != version.GitVersion {
		t.Errorf("node %s runs kubelet %s on %s; want kubelet %s (the API server's) on containerd 2", n.Name, info.KubeletVersion, info.ContainerRuntimeVersion, version.GitVersion)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("node %s is not Ready: %+v", n.Name, n.Status.Conditions)
	}
	t.Logf("node %s: kubelet %s, %s, %s %s", n.Name, info.KubeletVersion, info.ContainerRuntimeVersion, info.OSImage, info.KernelVersion)
}
