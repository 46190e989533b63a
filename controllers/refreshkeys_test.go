//go:build !unit

package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// TestKeys_AnOlderSecretGetsRefreshKeysThatAreNeverPublished: a signing-key Secret written
// before refresh-token keys existed gets one for its active and next keys on the next pass,
// the signing keys unchanged; neither the public projection nor the JWKS ever holds a
// refresh key's public key or kid.
func TestKeys_AnOlderSecretGetsRefreshKeysThatAreNeverPublished(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", nil)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	reconcileOnce(t, r, ns, "auth")
	before, secret := keySet(t, ns, "auth")
	for name := range secret.Data {
		if strings.Contains(name, ".refresh.") {
			delete(secret.Data, name)
		}
	}
	if err := k8sClient.Update(context.Background(), secret); err != nil {
		t.Fatal(err)
	}

	reconcileOnce(t, r, ns, "auth")
	after, secret := keySet(t, ns, "auth")
	if len(after.Keys) != len(before.Keys) {
		t.Fatalf("%d keys after the pass, want the %d of before", len(after.Keys), len(before.Keys))
	}
	projection := get(t, ns, "auth-public-keys", &corev1.Secret{})
	jwks := get(t, ns, "auth-jwks", &corev1.ConfigMap{})
	for i, k := range after.Keys {
		if k.ID != before.Keys[i].ID || !k.Public.Equal(before.Keys[i].Public) {
			t.Errorf("key %d changed from %s to %s", i, before.Keys[i].ID, k.ID)
		}
		if k.Refresh == nil || k.Refresh.Private == nil {
			t.Fatalf("the %s key %s has no refresh key after the pass", k.State, k.ID)
		}
		pub := string(secret.Data[keyfiles.RefreshPublicKeyFile(k.ID)])
		for name, data := range projection.Data {
			if strings.Contains(string(data), k.Refresh.ID) || strings.Contains(string(data), pub) || strings.Contains(name, ".refresh.") {
				t.Errorf("the public projection's %s holds the refresh key of %s", name, k.ID)
			}
		}
		if strings.Contains(jwks.Data[JWKSKey], k.Refresh.ID) {
			t.Errorf("the JWKS lists the refresh key of %s", k.ID)
		}
	}
}

// TestKeys_ARetiredKeysRefreshKeyOutlivesItsAccessWindow: a rotation retires the active
// key with its refresh-token key: both private parts leave the Secret, the refresh key's
// public part stays after the key leaves the JWKS (expiresAt), so the issuer verifies the
// key's refresh tokens for their whole lifetime, and goes with the key at
// refreshExpiresAt.
func TestKeys_ARetiredKeysRefreshKeyOutlivesItsAccessWindow(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	r := newDirectReconciler(t, clk, nil)
	reconcileOnce(t, r, ns, "auth")
	first, _ := keySet(t, ns, "auth")
	signer, _ := first.Active()
	clk.SetTime(t0.Add(shortInterval))
	reconcileOnce(t, r, ns, "auth")
	set, secret := keySet(t, ns, "auth")
	retired, _ := set.Lookup(signer.ID)
	if retired.State != "retired" || retired.Refresh == nil || retired.Refresh.ID != signer.Refresh.ID || retired.Refresh.Private != nil {
		t.Fatalf("after the rotation the old key is %s with refresh key %+v, want retired with the same refresh key, public part only", retired.State, retired.Refresh)
	}
	if _, ok := secret.Data[keyfiles.RefreshPrivateKeyFile(signer.ID)]; ok {
		t.Error("the retired key's refresh private key is still in the Secret")
	}
	if active, _ := set.Active(); active.Refresh == nil || active.Refresh.Private == nil {
		t.Errorf("the new active key has no refresh key to sign with: %+v", active.Refresh)
	}

	clk.SetTime(retired.ExpiresAt.Add(time.Second))
	reconcileOnce(t, r, ns, "auth")
	_, secret = keySet(t, ns, "auth")
	if _, ok := secret.Data[keyfiles.RefreshPublicKeyFile(signer.ID)]; !ok {
		t.Fatal("the retired key's refresh public key left the Secret with its access window")
	}
	if projection := get(t, ns, "auth-public-keys", &corev1.Secret{}); len(projection.Data[keyfiles.PublicKeyFile(signer.ID)]) > 0 {
		t.Error("the retired key is still published after its expiresAt")
	}

	clk.SetTime(retired.RefreshExpiresAt.Add(time.Second))
	reconcileOnce(t, r, ns, "auth")
	_, secret = keySet(t, ns, "auth")
	for name := range secret.Data {
		if strings.HasPrefix(name, signer.ID) {
			t.Errorf("%s is still in the Secret after the key's refreshExpiresAt", name)
		}
	}
}
