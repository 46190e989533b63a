package e2e

import (
	"context"
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
	t.Logf("pods of %s, all Ready under the restricted Pod Security Standard: %v", ns, apps)
}
