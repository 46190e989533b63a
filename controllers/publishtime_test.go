//go:build !unit

package controllers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
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

// TestServer_JWKSMaxAgeFollowsMinKeyPublishTime shows the auth server's JWKS cache lifetime
// kept below a shortened publish time, and the pod template left as it was with the default
// one so that upgrading the operator rolls no pod.
func TestServer_JWKSMaxAgeFollowsMinKeyPublishTime(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", nil)
	clk := clocktesting.NewFakePassiveClock(t0)
	deploymentEnv := func() map[string]string {
		d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
		return envMap(d.Spec.Template.Spec.Containers[0])
	}

	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if v, ok := deploymentEnv()["AUTHSERVER_JWKS_MAX_AGE"]; ok {
		t.Fatalf("default publish time: AUTHSERVER_JWKS_MAX_AGE = %q, want it unset", v)
	}
	template := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template

	explicitDefault := newDirectReconciler(t, clk, nil)
	explicitDefault.MinKeyPublishTime = keylifecycle.DefaultMinPublishTime
	reconcileOnce(t, explicitDefault, ns, "auth")
	if got := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template; !equality.Semantic.DeepEqual(got, template) {
		t.Fatalf("an explicit default publish time changed the pod template")
	}

	fast := newDirectReconciler(t, clk, nil)
	fast.MinKeyPublishTime = 3 * time.Second
	reconcileOnce(t, fast, ns, "auth")
	if v := deploymentEnv()["AUTHSERVER_JWKS_MAX_AGE"]; v != "1s" {
		t.Fatalf("publish time 3s: AUTHSERVER_JWKS_MAX_AGE = %q, want 1s", v)
	}

	minute := newDirectReconciler(t, clk, nil)
	minute.MinKeyPublishTime = time.Minute
	reconcileOnce(t, minute, ns, "auth")
	maxAge, err := time.ParseDuration(deploymentEnv()["AUTHSERVER_JWKS_MAX_AGE"])
	if err != nil || maxAge != 12*time.Second {
		t.Fatalf("publish time 1m: AUTHSERVER_JWKS_MAX_AGE = %s (%v), want 12s", maxAge, err)
	}

	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if got := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template; !equality.Semantic.DeepEqual(got, template) {
		t.Fatalf("back at the default publish time the pod template keeps %v", envMap(got.Spec.Containers[0]))
	}
}

// TestKeys_SpecMinPublishTimeWinsOverTheOperators shows spec.signingKeys.minPublishTime
// reaching both the key lifecycle and the JWKS max-age: with 3s on the AuthService, an operator
// at the default publish time rotates 3s after the next key was published and gives the server
// a 1s max-age; without it the operator's own value holds.
func TestKeys_SpecMinPublishTimeWinsOverTheOperators(t *testing.T) {
	const publish = 3 * time.Second
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		shortRotation(as)
		as.Spec.SigningKeys.MinPublishTime = &metav1.Duration{Duration: publish}
	})
	clk := clocktesting.NewFakePassiveClock(t0)
	operator := newDirectReconciler(t, clk, nil)
	reconcileOnce(t, operator, ns, "auth")
	created, _ := keySet(t, ns, "auth")
	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	if v := envMap(d.Spec.Template.Spec.Containers[0])["AUTHSERVER_JWKS_MAX_AGE"]; v != "1s" {
		t.Errorf("spec publish time 3s: AUTHSERVER_JWKS_MAX_AGE = %q, want 1s", v)
	}

	clk.SetTime(t0.Add(publish - time.Second))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Annotations = map[string]string{authv1alpha1.RotateAnnotation: "spec-publish-time"}
	})
	reconcileOnce(t, operator, ns, "auth")
	if s, _ := keySet(t, ns, "auth"); mustActive(t, s).ID != mustActive(t, created).ID {
		t.Fatalf("rotated onto a key published %s ago, less than the spec's %s", publish-time.Second, publish)
	}
	clk.SetTime(t0.Add(publish))
	reconcileOnce(t, operator, ns, "auth")
	if s, _ := keySet(t, ns, "auth"); mustActive(t, s).ID != mustNext(t, created).ID {
		t.Fatalf("active key %s after the spec's %s, want the next key %s", mustActive(t, s).ID, publish, mustNext(t, created).ID)
	}

	// Removed from the spec, the operator's value (here its default) holds again.
	update(t, as, func(as *authv1alpha1.AuthService) { as.Spec.SigningKeys.MinPublishTime = nil })
	reconcileOnce(t, operator, ns, "auth")
	d = get(t, ns, "auth-authserver", &appsv1.Deployment{})
	if v, ok := envMap(d.Spec.Template.Spec.Containers[0])["AUTHSERVER_JWKS_MAX_AGE"]; ok {
		t.Errorf("without the spec's publish time: AUTHSERVER_JWKS_MAX_AGE = %q, want it unset", v)
	}
}
