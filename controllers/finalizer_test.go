package controllers

import (
	"context"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// TestFinalizer_DeletesTheIssuersClusterRoleBinding deletes one of two AuthServices: its
// ClusterRoleBinding goes (the garbage collector could not delete it, nothing owns it), the
// other's stays, and the AuthService itself is released. A binding deleted by hand comes back.
func TestFinalizer_DeletesTheIssuersClusterRoleBinding(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	doomed := createAuthService(t, ns, "auth", nil)
	createAuthService(t, ns, "other", nil)
	doomedBinding, otherBinding := named(ns, "auth").IssuerClusterRoleBindingName(), named(ns, "other").IssuerClusterRoleBindingName()
	poll.Until(t, waitTimeout, "both ClusterRoleBindings", func() error {
		for _, name := range []string{doomedBinding, otherBinding} {
			if isNotFound(t, "", name, &rbacv1.ClusterRoleBinding{}) {
				return errorf("no ClusterRoleBinding %s", name)
			}
		}
		return nil
	})
	if as := get(t, ns, "auth", doomed); !slices.Contains(as.Finalizers, ClusterResourcesFinalizer) {
		t.Fatalf("finalizers = %v", as.Finalizers)
	}

	// Drift: a deleted binding is put back without waiting for the next scheduled pass.
	crb := get(t, "", otherBinding, &rbacv1.ClusterRoleBinding{})
	if err := k8sClient.Delete(context.Background(), crb); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "ClusterRoleBinding recreated", func() error {
		again := &rbacv1.ClusterRoleBinding{}
		if isNotFound(t, "", otherBinding, again) {
			return errorf("not yet")
		}
		if again.UID == crb.UID {
			return errorf("still the deleted one")
		}
		return nil
	})

	if err := k8sClient.Delete(context.Background(), doomed); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "AuthService and its ClusterRoleBinding gone", func() error {
		if !isNotFound(t, "", doomedBinding, &rbacv1.ClusterRoleBinding{}) {
			return errorf("ClusterRoleBinding %s still there", doomedBinding)
		}
		if !isNotFound(t, ns, "auth", &authv1alpha1.AuthService{}) {
			return errorf("AuthService still there")
		}
		return nil
	})
	if isNotFound(t, "", otherBinding, &rbacv1.ClusterRoleBinding{}) {
		t.Error("deleting one AuthService removed another's ClusterRoleBinding")
	}
	if c := condition(get(t, ns, "other", &authv1alpha1.AuthService{}), authv1alpha1.KeysReadyCondition); c.Status != metav1.ConditionTrue {
		t.Errorf("the other AuthService's KeysReady = %+v", c)
	}
}

// TestFinalizer_AForeignBindingOfTheSameNameIsNotTakenOver covers the one name clash the
// naming scheme allows: namespace "a-b" with AuthService "c" and namespace "a" with "b-c".
func TestFinalizer_AForeignBindingOfTheSameNameIsNotTakenOver(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", nil)
	squatter := issuerClusterRoleBinding(as)
	squatter.Labels[authv1alpha1.AuthServiceNamespaceLabel] = "elsewhere"
	if err := k8sClient.Create(context.Background(), squatter); err != nil {
		t.Fatal(err)
	}
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	// A failing workload phase is reported and retried, never returned as an error (that
	// would put the key rotation schedule behind error backoff).
	res, err := r.Reconcile(context.Background(), request(ns, "auth"))
	if err != nil || res.RequeueAfter <= 0 {
		t.Fatalf("pass with a foreign binding in the way: %+v, %v; want a retry and no error", res, err)
	}
	got := get(t, ns, "auth", &authv1alpha1.AuthService{})
	if c := condition(got, authv1alpha1.IssuerReadyCondition); c.Status != metav1.ConditionFalse || !contains(c.Message, "belongs to AuthService elsewhere/auth") {
		t.Errorf("IssuerReady = %+v", c)
	}
	if crb := get(t, "", squatter.Name, &rbacv1.ClusterRoleBinding{}); crb.Labels[authv1alpha1.AuthServiceNamespaceLabel] != "elsewhere" {
		t.Error("the foreign binding was rewritten")
	}
	// Deleting this AuthService leaves the other's binding alone.
	if err := k8sClient.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), request(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	if !isNotFound(t, ns, "auth", &authv1alpha1.AuthService{}) {
		t.Error("the finalizer was not removed")
	}
	if isNotFound(t, "", squatter.Name, &rbacv1.ClusterRoleBinding{}) {
		t.Error("the finalizer deleted another AuthService's binding")
	}
}
