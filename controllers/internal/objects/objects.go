package objects

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// The labels of every object the operator makes, besides authv1alpha1.AuthServiceLabel.
const (
	// ManagedByLabel marks every object the operator creates; the manager caches only those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "auth-operator"
	NameLabel      = "app.kubernetes.io/name"
	InstanceLabel  = "app.kubernetes.io/instance"
	ComponentLabel = "app.kubernetes.io/component"
)

// The app names (NameLabel) of the auth server's roles. The issuer's differs from the
// verifier's so that the verifier's selectors (Deployment, Service, PodDisruptionBudget),
// which cannot change on a live Deployment, never reach the issuer's pods.
const (
	AppVerifier = "authserver"
	AppIssuer   = "authserver-issuer"
)

// Labels are the labels of an object of one part of an AuthService: app name, component.
func Labels(as *authv1alpha1.AuthService, name, component string) map[string]string {
	return map[string]string{
		ManagedByLabel:                ManagedByValue,
		NameLabel:                     name,
		InstanceLabel:                 as.Name,
		ComponentLabel:                component,
		authv1alpha1.AuthServiceLabel: as.Name,
	}
}

// Selector is the stable subset of Labels that selects an AuthService's pods of one app.
func Selector(as *authv1alpha1.AuthService, name string) map[string]string {
	return map[string]string{NameLabel: name, InstanceLabel: as.Name}
}

// ClusterService is the Service named name that sends port to the container port called
// portName of this AuthService's app pods (authserver or redis).
func ClusterService(as *authv1alpha1.AuthService, name, app, component, portName string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: as.Namespace, Labels: Labels(as, app, component)},
		Spec: corev1.ServiceSpec{
			Selector: Selector(as, app),
			Ports:    []corev1.ServicePort{{Name: portName, Port: port, TargetPort: intstr.FromString(portName), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// RestrictedPodSecurityContext meets the "restricted" Pod Security Standard: a fixed
// non-root user whose group may read the mounted Secrets, and the runtime's seccomp profile.
func RestrictedPodSecurityContext(uid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(uid),
		RunAsGroup:     ptr.To(uid),
		FSGroup:        ptr.To(uid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// RestrictedContainerSecurityContext drops every capability, forbids privilege escalation
// and makes the root file system read-only.
func RestrictedContainerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
