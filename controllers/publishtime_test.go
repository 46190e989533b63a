package controllers

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// TestKeys_MinKeyPublishTimeComesFromTheReconciler shows the operator's --min-key-publish-time
// reaching the key lifecycle: with 3s, a requested rotation waits until the next key has been
// published for 3s and then happens, where the default would wait 5 minutes.
func TestKeys_MinKeyPublishTimeComesFromTheReconciler(t *testing.T) {
	const publish = 3 * time.Second
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	fast := newDirectReconciler(t, clk, nil)
	fast.MinKeyPublishTime = publish
	reconcileOnce(t, fast, ns, "auth")
	created, _ := keySet(t, ns, "auth")
	if !mustNext(t, created).CreatedAt.Equal(t0) {
		t.Fatalf("next key created at %s, want %s", mustNext(t, created).CreatedAt, t0)
	}

	clk.SetTime(t0.Add(publish - time.Second))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Annotations = map[string]string{authv1alpha1.RotateAnnotation: "publish-time"}
	})
	reconcileOnce(t, fast, ns, "auth")
	if s, _ := keySet(t, ns, "auth"); mustActive(t, s).ID != mustActive(t, created).ID {
		t.Fatalf("rotated onto a key published %s ago, less than %s", publish-time.Second, publish)
	}

	clk.SetTime(t0.Add(publish))
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if s, _ := keySet(t, ns, "auth"); mustActive(t, s).ID != mustActive(t, created).ID {
		t.Fatalf("a reconciler with the default publish time rotated after %s", publish)
	}
	reconcileOnce(t, fast, ns, "auth")
	rotated, _ := keySet(t, ns, "auth")
	if mustActive(t, rotated).ID != mustNext(t, created).ID {
		t.Fatalf("active key %s after %s, want the next key %s", mustActive(t, rotated).ID, publish, mustNext(t, created).ID)
	}
}
