package controllers

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// TestForeignObjects_AreRefusedNotAdopted: a hand-made Service and Secret with the names the
// operator would use are neither taken over nor retried every second: the condition and an
// event name them, and the pass comes back after a minute.
func TestForeignObjects_AreRefusedNotAdopted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	handMade := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-authserver"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "legacy-web"},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 8000, TargetPort: intstr.FromInt32(8000)}},
		},
	}
	if err := k8sClient.Create(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	createSecret(t, ns, "auth-redis", map[string][]byte{"password": []byte("someone-elses-password-0123456789")})
	createAuthService(t, ns, "web", externalRedis)
	createAuthService(t, ns, "auth", nil)

	for _, tc := range []struct {
		name, condition, object string
	}{
		{"web", authv1alpha1.ServerReadyCondition, "Service web-authserver"},
		{"auth", authv1alpha1.RedisReadyCondition, "Secret auth-redis"},
	} {
		res, err := r.Reconcile(ctx, request(ns, tc.name))
		if err != nil {
			t.Fatalf("%s: Reconcile: %v", tc.name, err)
		}
		if res.RequeueAfter != foreignRetry {
			t.Errorf("%s: RequeueAfter = %s, want %s (not a tight retry loop)", tc.name, res.RequeueAfter, foreignRetry)
		}
		c := condition(get(t, ns, tc.name, &authv1alpha1.AuthService{}), tc.condition)
		if c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonForeignObject || !strings.Contains(c.Message, tc.object+" already exists") {
			t.Errorf("%s: %s = %s %s %q", tc.name, tc.condition, c.Status, c.Reason, c.Message)
		}
		waitEvent(t, ns, tc.name, corev1.EventTypeWarning, authv1alpha1.ReasonForeignObject, tc.object)
	}
	svc := get(t, ns, "web-authserver", &corev1.Service{})
	if len(svc.OwnerReferences) != 0 || svc.Spec.Selector["app"] != "legacy-web" || len(svc.Spec.Ports) != 1 || svc.Labels[ManagedByLabel] != "" {
		t.Errorf("the hand-made Service was taken over: owners %v, selector %v, ports %v, labels %v", svc.OwnerReferences, svc.Spec.Selector, svc.Spec.Ports, svc.Labels)
	}
	for _, f := range svc.ManagedFields {
		if f.Manager == fieldOwner {
			t.Errorf("the operator owns fields of the hand-made Service: %+v", f)
		}
	}
	sec := get(t, ns, "auth-redis", &corev1.Secret{})
	if len(sec.OwnerReferences) != 0 || string(sec.Data["password"]) != "someone-elses-password-0123456789" || len(sec.Data) != 1 {
		t.Errorf("the hand-made Secret was taken over: owners %v, keys %d", sec.OwnerReferences, len(sec.Data))
	}
	// Once the foreign object is gone, the operator creates its own.
	if err := k8sClient.Delete(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, ns, "web")
	if svc := get(t, ns, "web-authserver", &corev1.Service{}); !metav1.IsControlledBy(svc, get(t, ns, "web", &authv1alpha1.AuthService{})) {
		t.Error("the operator's Service was not created after the foreign one went")
	}
}
