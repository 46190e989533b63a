package controllers

import (
	"context"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// TestRedisKeyPrefix_IsPerAuthService: two AuthServices on one Redis get prefixes derived
// from their namespace, name and UID, so a logout on one never logs a token out on the
// other; the spec can set one; an AuthService that ran before prefixes were derived keeps
// the shared prefix its servers wrote under.
func TestRedisKeyPrefix_IsPerAuthService(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	one := createAuthService(t, ns, "one", externalRedis)
	two := createAuthService(t, ns, "two", externalRedis)
	createAuthService(t, ns, "pinned", func(as *authv1alpha1.AuthService) {
		externalRedis(as)
		as.Spec.Redis.KeyPrefix = "tenant-a:"
	})
	for _, name := range []string{"one", "two", "pinned"} {
		reconcileOnce(t, r, ns, name)
	}
	for _, as := range []*authv1alpha1.AuthService{one, two} {
		want := "authserver:" + ns + "." + as.Name + "." + string(as.UID) + ":"
		if got := serverEnvOf(t, ns, as.Name)["AUTHSERVER_REDIS_KEY_PREFIX"]; got != want {
			t.Errorf("%s: AUTHSERVER_REDIS_KEY_PREFIX = %q, want %q", as.Name, got, want)
		}
		if got := get(t, ns, as.Name, &authv1alpha1.AuthService{}).Status.RedisKeyPrefix; got != want {
			t.Errorf("%s: status.redisKeyPrefix = %q, want %q", as.Name, got, want)
		}
	}
	if got := serverEnvOf(t, ns, "pinned")["AUTHSERVER_REDIS_KEY_PREFIX"]; got != "tenant-a:" {
		t.Errorf("pinned: AUTHSERVER_REDIS_KEY_PREFIX = %q, want the spec's", got)
	}

	// An AuthService an older operator ran: it has keys but no recorded prefix.
	legacy := createAuthService(t, ns, "legacy", externalRedis)
	legacy.Status.ActiveKeyID = "kid-from-an-older-operator"
	if err := k8sClient.Status().Update(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconcile(context.Background(), request(ns, "legacy"))
	if err != nil || res.RequeueAfter <= 0 {
		t.Fatalf("Reconcile: %v, %v", res, err)
	}
	if got := serverEnvOf(t, ns, "legacy")["AUTHSERVER_REDIS_KEY_PREFIX"]; got != "authserver:" {
		t.Errorf("legacy: AUTHSERVER_REDIS_KEY_PREFIX = %q, want the shared authserver: its blacklist is under", got)
	}
	if got := get(t, ns, "legacy", &authv1alpha1.AuthService{}).Status.RedisKeyPrefix; got != "authserver:" {
		t.Errorf("legacy: status.redisKeyPrefix = %q", got)
	}
}
