package podtest

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// RestrictedContexts checks the pod and container (init containers included) security
// contexts of the restricted Pod Security Standard, with uid the fixed user and group.
func RestrictedContexts(t *testing.T, pod corev1.PodSpec, uid int64) {
	t.Helper()
	p := pod.SecurityContext
	if p == nil || !ptr.Deref(p.RunAsNonRoot, false) || ptr.Deref(p.RunAsUser, 0) != uid || ptr.Deref(p.FSGroup, 0) != uid ||
		p.SeccompProfile == nil || p.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", p)
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		s := c.SecurityContext
		if s == nil || ptr.Deref(s.AllowPrivilegeEscalation, true) || !ptr.Deref(s.ReadOnlyRootFilesystem, false) ||
			!ptr.Deref(s.RunAsNonRoot, false) || s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s security context %+v", c.Name, s)
		}
	}
}

// Restricted checks that the pod of what runs as the non-root uid with the runtime's seccomp
// profile, its containers with a read-only root, no escalation and no capabilities, and
// that it mounts no ServiceAccount token.
func Restricted(t *testing.T, what string, pod corev1.PodSpec, uid int64) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || ptr.Deref(psc.RunAsUser, 0) != uid ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s pod security context = %+v, want non-root uid %d with RuntimeDefault seccomp", what, psc, uid)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s container %s security context = %+v, want read-only root, no escalation, drop ALL", what, c.Name, sc)
		}
	}
	if ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Errorf("%s mounts a service account token it does not need", what)
	}
}

// Selects checks that selector picks the pods of template and names the app.
func Selects(t *testing.T, selector *metav1.LabelSelector, template corev1.PodTemplateSpec, app string) {
	t.Helper()
	if selector == nil || selector.MatchLabels["app.kubernetes.io/name"] != app {
		t.Fatalf("selector %v does not name app %s", selector, app)
	}
	for k, v := range selector.MatchLabels {
		if template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, template.Labels)
		}
	}
}

// Volume is the volume of pod called name, nil when there is none.
func Volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// FlagValue is the value after flag in args, "" when it is missing.
func FlagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}
