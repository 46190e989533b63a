package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/controllers/managedredis"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// These tests run the controller in a manager and act on the cluster the way a user would.

func startWithKeys(t *testing.T, clk *clocktesting.FakePassiveClock) (string, *authv1alpha1.AuthService, keydomain.Set) {
	t.Helper()
	ns := newNamespace(t)
	startManager(t, ns, clk)
	as := createAuthService(t, ns, "auth", shortRotation)
	waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished)
	set, _ := keySet(t, ns, "auth")
	return ns, as, set
}

func TestManualRotation_ByAnnotation(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, as, created := startWithKeys(t, clk)
	clk.SetTime(t0.Add(10 * time.Minute))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Annotations = map[string]string{authv1alpha1.RotateAnnotation: "first"}
	})
	poll.Until(t, waitTimeout, "manual rotation", func() error {
		as = get(t, ns, "auth", as)
		if as.Status.LastRotationRequest != "first" || as.Status.ActiveKeyID != mustNext(t, created).ID {
			return errorf("lastRotationRequest %q active %s", as.Status.LastRotationRequest, as.Status.ActiveKeyID)
		}
		return nil
	})
	waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyRotated", "requested rotation", mustActive(t, created).ID)
	rotated, secret := keySet(t, ns, "auth")
	if len(rotated.Keys) != 3 {
		t.Fatalf("keys after a manual rotation = %d, want retired + active + next", len(rotated.Keys))
	}

	// Once the new next key could sign, a pass after another annotation changed, with the
	// handled request still in place, does not rotate.
	clk.SetTime(t0.Add(10*time.Minute + keylifecycle.DefaultMinPublishTime))
	update(t, as, func(as *authv1alpha1.AuthService) { as.Annotations["example.com/unrelated"] = "x" })
	if _, err := newDirectReconciler(t, clk, nil).Reconcile(context.Background(), request(ns, "auth")); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != secret.ResourceVersion {
		t.Fatal("an unrelated annotation change rotated the keys")
	}
}

func TestRevocation_RemovesTheKeyAtOnce(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, as, created := startWithKeys(t, clk)
	compromised := mustActive(t, created).ID
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Spec.SigningKeys.RevokedKeyIDs = []authv1alpha1.KeyID{authv1alpha1.KeyID(compromised)}
	})
	poll.Until(t, waitTimeout, "revocation", func() error {
		set, _ := keySet(t, ns, "auth")
		if _, ok := set.Lookup(compromised); ok {
			return errorf("revoked key still in the Secret")
		}
		if mustActive(t, set).ID != mustNext(t, created).ID {
			return errorf("the next key was not promoted")
		}
		cm := get(t, ns, "auth-jwks", &corev1.ConfigMap{})
		if strings.Contains(cm.Data[JWKSKey], compromised) {
			return errorf("revoked key still in the JWKS")
		}
		return nil
	})
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, "KeyRevoked", compromised, "fails verification")
	poll.Until(t, waitTimeout, "status without the revoked key", func() error {
		as = get(t, ns, "auth", as)
		for _, k := range as.Status.Keys {
			if k.KeyID == compromised {
				return errorf("status still lists the revoked key")
			}
		}
		if as.Status.ActiveKeyID != mustNext(t, created).ID || as.Status.ObservedGeneration != as.Generation {
			return errorf("active %s, observedGeneration %d of %d", as.Status.ActiveKeyID, as.Status.ObservedGeneration, as.Generation)
		}
		return nil
	})
}

func TestDeletedSecret_IsRecreatedWithAWarning(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, _, created := startWithKeys(t, clk)
	_, secret := keySet(t, ns, "auth")
	if err := k8sClient.Delete(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "Secret recreated", func() error {
		s := &corev1.Secret{}
		if isNotFound(t, ns, "auth-signing-keys", s) {
			return errorf("not yet")
		}
		if s.UID == secret.UID {
			return errorf("still the old Secret")
		}
		return nil
	})
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, "SecretRecreated", "keys are gone", mustActive(t, created).ID)
	as := waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonSecretRecreated)
	poll.Until(t, waitTimeout, "status of the new keys", func() error {
		set, _ := keySet(t, ns, "auth")
		if as = get(t, ns, "auth", as); as.Status.ActiveKeyID != mustActive(t, set).ID {
			return errorf("status active %s", as.Status.ActiveKeyID)
		}
		return nil
	})
	set := checkKeyInvariants(t, ns, "auth", clk.Now())
	if _, ok := set.Lookup(mustActive(t, created).ID); ok {
		t.Error("the recreated Secret holds the old key, which the operator cannot have")
	}
	if c := condition(as, authv1alpha1.KeysReadyCondition); !strings.Contains(c.Message, "no longer verify") {
		t.Errorf("KeysReady message = %q", c.Message)
	}
}

func TestInvalidSecret_IsLeftUntouched(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, _, _ := startWithKeys(t, clk)
	_, secret := keySet(t, ns, "auth")
	update(t, secret, func(s *corev1.Secret) { s.Data[keyfiles.ManifestFile] = []byte("{not json") })
	as := waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonSecretInvalid)
	if c := condition(as, authv1alpha1.KeysReadyCondition); !strings.Contains(c.Message, "left untouched") {
		t.Errorf("KeysReady message = %q", c.Message)
	}
	if c := condition(as, authv1alpha1.ReadyCondition); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %s with a broken key Secret", c.Status)
	}
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, authv1alpha1.ReasonSecretInvalid, "parsing keyset.json")
	// A pass that finds a rotation due still leaves the Secret alone.
	clk.SetTime(t0.Add(2 * shortInterval))
	if _, err := newDirectReconciler(t, clk, nil).Reconcile(context.Background(), request(ns, "auth")); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got := get(t, ns, "auth-signing-keys", &corev1.Secret{}); got.ResourceVersion != secret.ResourceVersion {
		t.Fatal("the operator overwrote a Secret it could not read")
	}
}

func TestDrift_IsReverted(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	createAuthService(t, ns, "auth", nil)
	waitCondition(t, ns, "auth", authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, "")

	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "evil.example.com/authserver:latest"
		d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
		d.Spec.Replicas = ptrTo[int32](7)
	})
	poll.Until(t, waitTimeout, "Deployment reverted", func() error {
		d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != testImage || *d.Spec.Replicas != 2 || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			return errorf("image %s replicas %d readOnlyRootFilesystem %v", c.Image, *d.Spec.Replicas, c.SecurityContext.ReadOnlyRootFilesystem)
		}
		return nil
	})

	svc := get(t, ns, "auth-authserver", &corev1.Service{})
	update(t, svc, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "somewhere-else"} })
	poll.Until(t, waitTimeout, "Service selector reverted", func() error {
		s := get(t, ns, "auth-authserver", &corev1.Service{})
		if s.Spec.Selector["app.kubernetes.io/name"] != "authserver" || s.Spec.Selector["app"] != "" {
			return errorf("selector %v", s.Spec.Selector)
		}
		return nil
	})

	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.NetworkPolicy{}} {
		deleted := get(t, ns, "auth-redis", obj)
		if err := k8sClient.Delete(context.Background(), deleted); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, waitTimeout, "Redis "+typeName(obj)+" recreated", func() error {
			if isNotFound(t, ns, "auth-redis", obj.DeepCopyObject().(client.Object)) {
				return errorf("not yet")
			}
			return nil
		})
	}

	keys := get(t, ns, "auth-signing-keys", &corev1.Secret{})
	update(t, keys, func(s *corev1.Secret) { s.Data["planted.key.pem"] = []byte("not ours") })
	poll.Until(t, waitTimeout, "foreign file removed from the key Secret", func() error {
		if _, ok := get(t, ns, "auth-signing-keys", &corev1.Secret{}).Data["planted.key.pem"]; ok {
			return errorf("still there")
		}
		return nil
	})

	cm := get(t, ns, "auth-jwks", &corev1.ConfigMap{})
	original := cm.Data[JWKSKey]
	update(t, cm, func(cm *corev1.ConfigMap) { cm.Data[JWKSKey] = `{"keys":[]}` })
	poll.Until(t, waitTimeout, "JWKS reverted", func() error {
		if got := get(t, ns, "auth-jwks", &corev1.ConfigMap{}).Data[JWKSKey]; got != original {
			return errorf("jwks.json = %s", got)
		}
		return nil
	})
}

func TestRedisPasswordChange_RollsTheServerButKeyRotationDoesNot(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, as, _ := startWithKeys(t, clk)
	waitCondition(t, ns, "auth", authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, "")
	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	checksumBefore := d.Spec.Template.Annotations[RedisPasswordChecksumAnnotation]

	// A rotation changes the mounted Secret only.
	clk.SetTime(t0.Add(shortInterval))
	update(t, as, func(as *authv1alpha1.AuthService) { as.Annotations = map[string]string{"example.com/poke": "1"} })
	poll.Until(t, waitTimeout, "scheduled rotation", func() error {
		if as := get(t, ns, "auth", &authv1alpha1.AuthService{}); len(as.Status.Keys) != 3 {
			return errorf("%d keys", len(as.Status.Keys))
		}
		return nil
	})
	if got := get(t, ns, "auth-authserver", &appsv1.Deployment{}); got.Generation != d.Generation {
		t.Fatalf("a key rotation changed the Deployment (generation %d -> %d)", d.Generation, got.Generation)
	}

	// A new password rolls the server and Redis, and redis.conf follows it.
	redisSecret := get(t, ns, "auth-redis", &corev1.Secret{})
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	update(t, redisSecret, func(s *corev1.Secret) { s.Data[managedredis.PasswordKey] = []byte("a-new-password-chosen-by-an-admin") })
	poll.Until(t, waitTimeout, "server rolled", func() error {
		got := get(t, ns, "auth-authserver", &appsv1.Deployment{})
		if got.Spec.Template.Annotations[RedisPasswordChecksumAnnotation] == checksumBefore {
			return errorf("checksum annotation unchanged")
		}
		return nil
	})
	poll.Until(t, waitTimeout, "redis.conf and Redis follow", func() error {
		s := get(t, ns, "auth-redis", &corev1.Secret{})
		if !strings.Contains(string(s.Data[managedredis.ConfigKey]), "requirepass a-new-password-chosen-by-an-admin\n") {
			return errorf("redis.conf not updated")
		}
		if got := get(t, ns, "auth-redis", &appsv1.StatefulSet{}); got.Generation == sts.Generation {
			return errorf("Redis pod template unchanged")
		}
		return nil
	})
}

// TestManagerRestart_RotatesOnceWhenItComesBack stops the whole manager, lets a rotation
// fall due while it is down, and starts a new one: the new manager rotates exactly once.
func TestManagerRestart_RotatesOnceWhenItComesBack(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns := newNamespace(t)
	_, stop := startManager(t, ns, clk)
	createAuthService(t, ns, "auth", shortRotation)
	waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished)
	created, _ := keySet(t, ns, "auth")
	stop()

	before := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "schedule"))
	clk.SetTime(t0.Add(shortInterval + 10*time.Minute))
	startManager(t, ns, clk)
	poll.Until(t, waitTimeout, "rotation after the restart", func() error {
		set, _ := keySet(t, ns, "auth")
		if mustActive(t, set).ID != mustNext(t, created).ID {
			return errorf("not rotated yet")
		}
		return nil
	})
	_, secret := keySet(t, ns, "auth")
	// A minute later, with a publish time that no longer holds a second rotation back, a
	// pass finds nothing due.
	clk.SetTime(clk.Now().Add(time.Minute))
	fresh := newDirectReconciler(t, clk, nil)
	fresh.MinKeyPublishTime = time.Second
	reconcileOnce(t, fresh, ns, "auth")
	if _, again := keySet(t, ns, "auth"); again.ResourceVersion != secret.ResourceVersion {
		t.Fatal("the keys changed again after the one rotation that was due")
	}
	if got := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "schedule")) - before; got != 1 {
		t.Errorf("rotations after the restart = %v, want 1", got)
	}
	checkKeyInvariants(t, ns, "auth", clk.Now())
}

// TestRevocationEvent_NamesTheFieldManager revokes two keys on the API server, each
// written by another field manager: each KeyRevoked event names the manager that
// wrote that key's entry, not the other one.
func TestRevocationEvent_NamesTheFieldManager(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, as, created := startWithKeys(t, clk)
	first := mustActive(t, created).ID
	revokeAs(t, as, "alice-tool", first)
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, "KeyRevoked", first, "by field manager alice-tool (spec.signingKeys.revokedKeyIDs)")

	var second string
	poll.Until(t, waitTimeout, "a new next key", func() error {
		set, _ := keySet(t, ns, "auth")
		next, ok := set.Next()
		if !ok || next.ID == mustNext(t, created).ID {
			return fmt.Errorf("next key still %s", next.ID)
		}
		second = next.ID
		return nil
	})
	revokeAs(t, as, "bob-tool", second)
	note := waitEvent(t, ns, "auth", corev1.EventTypeWarning, "KeyRevoked", second, "by field manager bob-tool (spec.signingKeys.revokedKeyIDs)")
	t.Logf("event: %s", note)
}

// revokeAs adds kid to spec.signingKeys.revokedKeyIDs as field manager manager.
func revokeAs(t *testing.T, as *authv1alpha1.AuthService, manager, kid string) {
	t.Helper()
	poll.Until(t, waitTimeout, "revoking "+kid, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(as), as); err != nil {
			return err
		}
		as.Spec.SigningKeys.RevokedKeyIDs = append(as.Spec.SigningKeys.RevokedKeyIDs, authv1alpha1.KeyID(kid))
		return k8sClient.Update(context.Background(), as, client.FieldOwner(manager))
	})
}
