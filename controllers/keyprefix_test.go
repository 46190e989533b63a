package controllers

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		as.Spec.Redis.KeyPrefix = "authserver:" + ns + ".tenant-a:"
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
	if got := serverEnvOf(t, ns, "pinned")["AUTHSERVER_REDIS_KEY_PREFIX"]; got != "authserver:"+ns+".tenant-a:" {
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

// TestRedisKeyPrefix_OfAnotherNamespaceIsRefused: a spec.redis.keyPrefix that has the
// right form but names another namespace (another tenant's key space on a shared Redis) is
// not wired: RedisReady says why and no auth server runs with it.
func TestRedisKeyPrefix_OfAnotherNamespaceIsRefused(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "squatter", func(as *authv1alpha1.AuthService) {
		externalRedis(as)
		as.Spec.Redis.KeyPrefix = "authserver:other-tenant.auth.0b7e1c:"
	})
	reconcileOnce(t, r, ns, "squatter")
	as := get(t, ns, "squatter", &authv1alpha1.AuthService{})
	c := meta.FindStatusCondition(as.Status.Conditions, authv1alpha1.RedisReadyCondition)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonKeyPrefixInvalid ||
		!strings.Contains(c.Message, "must start with authserver:"+ns+".") {
		t.Fatalf("RedisReady = %+v, want False/%s naming the namespace", c, authv1alpha1.ReasonKeyPrefixInvalid)
	}
	d := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: as.ServerName()}, d); !apierrors.IsNotFound(err) {
		t.Fatalf("the verifier Deployment exists (%v): it would run with another tenant's prefix", err)
	}
}
