//go:build !unit

package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// denyDeployment installs a ValidatingAdmissionPolicy that makes the API server refuse the
// Deployment name in namespace ns, as a quota, a policy engine or a broken webhook would.
func denyDeployment(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "object.metadata.name != '" + name + "'",
				Message:    "test policy refuses this Deployment",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
	}
	probe := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
			},
		},
	}
	poll.Until(t, waitTimeout, "the admission policy in effect", func() error {
		err := k8sClient.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return nil
		}
		return errorf("dry-run create: %v", err)
	})
}

// TestReconcile_AFailingWorkloadNeverDelaysARotation: while the API server refuses the
// auth-server Deployment, a pass answers a Result and no error (controller-runtime would
// drop the Result and back off for up to ~16 minutes), comes back soon, and the rotation
// happens on time.
func TestReconcile_AFailingWorkloadNeverDelaysARotation(t *testing.T) {
	ns := newNamespace(t)
	denyDeployment(t, ns, "auth-authserver")
	createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	r := newDirectReconciler(t, clk, nil)

	res, err := r.Reconcile(context.Background(), request(ns, "auth"))
	if err != nil {
		t.Fatalf("Reconcile returned an error with its Result (%v): controller-runtime drops the Result: %v", res, err)
	}
	if res.RequeueAfter != workloadRetry {
		t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, workloadRetry)
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	if c := condition(as, authv1alpha1.ServerReadyCondition); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "test policy refuses this Deployment") {
		t.Errorf("ServerReady = %s %q", c.Status, c.Message)
	}
	if c := condition(as, authv1alpha1.KeysReadyCondition); c.Status != metav1.ConditionTrue {
		t.Errorf("KeysReady = %s %q", c.Status, c.Message)
	}
	next := as.Status.NextKeyID

	// The rotation is due in less than the failure retry: the pass comes back for it.
	clk.SetTime(t0.Add(shortInterval - 10*time.Second))
	res, err = r.Reconcile(context.Background(), request(ns, "auth"))
	if err != nil || res.RequeueAfter != 10*time.Second {
		t.Fatalf("just before the rotation: %v, %v; want RequeueAfter 10s and no error", res, err)
	}
	clk.SetTime(t0.Add(shortInterval))
	if _, err := r.Reconcile(context.Background(), request(ns, "auth")); err != nil {
		t.Fatalf("Reconcile at the rotation: %v", err)
	}
	if got := get(t, ns, "auth", &authv1alpha1.AuthService{}).Status.ActiveKeyID; got != next {
		t.Errorf("active key after the rotation time = %s, want the next key %s: the failing Deployment held the rotation back", got, next)
	}
}
