//go:build !unit

package controllers

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

// where reports whether a kid is in the Secret, the verifiers' projection and the JWKS.
func where(t *testing.T, ns, kid string) (secret, projected, jwks bool) {
	t.Helper()
	set, s := keySet(t, ns, "auth")
	_, secret = set.Lookup(kid)
	if secret && s.Data[keyfiles.PrivateKeyFile(kid)] != nil {
		k, _ := set.Lookup(kid)
		if k.State == keyfiles.StateRetired {
			t.Errorf("retired key %s keeps its private key in the Secret", kid)
		}
	}
	cm := get(t, ns, "auth-public-keys", &corev1.Secret{})
	var m keyfiles.Manifest
	if err := json.Unmarshal(cm.Data[keyfiles.ManifestFile], &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range m.Keys {
		projected = projected || k.ID == kid
	}
	if projected != (len(cm.Data[keyfiles.PublicKeyFile(kid)]) != 0) {
		t.Errorf("the projection's manifest and files disagree about key %s", kid)
	}
	var set2 jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(get(t, ns, "auth-jwks", &corev1.ConfigMap{}).Data[JWKSKey]), &set2); err != nil {
		t.Fatal(err)
	}
	jwks = len(set2.Key(kid)) > 0
	return secret, projected, jwks
}

// TestKeys_RetiredKeyVerifiesRefreshTokensUntilTheyExpire follows a retired key through a
// rotation with a refresh lifetime of 3h: it leaves the JWKS and the verifiers' projection at
// expiresAt (its access tokens are gone) but stays in the Secret, public part only, for the
// issuer, until retiredAt + min publish time + refreshLifetime + leeway; then it is deleted.
// The operator wakes up at each of these times by itself.
func TestKeys_RetiredKeyVerifiesRefreshTokensUntilTheyExpire(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.SigningKeys.RotationInterval = metav1.Duration{Duration: 4 * time.Hour}
		as.Spec.Tokens.RefreshLifetime = metav1.Duration{Duration: 3 * time.Hour}
	})
	clk := clocktesting.NewFakePassiveClock(t0)
	r := newDirectReconciler(t, clk, nil)
	reconcileOnce(t, r, ns, "auth")
	first, _ := keySet(t, ns, "auth")
	old, _ := first.Active()

	rotatedAt := t0.Add(4 * time.Hour)
	clk.SetTime(rotatedAt)
	res := reconcileOnce(t, r, ns, "auth")
	expiresAt := rotatedAt.Add(retention)
	refreshExpiresAt := rotatedAt.Add(keylifecycle.DefaultMinPublishTime + 3*time.Hour + 30*time.Second)
	if s, p, j := where(t, ns, old.ID); !s || !p || !j {
		t.Fatalf("right after the rotation the retired key is in Secret %v, projection %v, JWKS %v; want all three", s, p, j)
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	st := as.Status.Keys[0]
	if st.KeyID != old.ID || st.State != "retired" || !st.ExpiresAt.Time.Equal(expiresAt) || st.RefreshExpiresAt == nil || !st.RefreshExpiresAt.Time.Equal(refreshExpiresAt) {
		t.Fatalf("status of the retired key = %+v, want expiresAt %s and refreshExpiresAt %s", st, expiresAt, refreshExpiresAt)
	}
	if res.RequeueAfter != retention {
		t.Errorf("RequeueAfter = %s, want the retired key's expiresAt in %s", res.RequeueAfter, retention)
	}

	// At expiresAt: out of the published documents, still in the Secret.
	clk.SetTime(rotatedAt.Add(res.RequeueAfter))
	res = reconcileOnce(t, r, ns, "auth")
	if s, p, j := where(t, ns, old.ID); !s || p || j {
		t.Fatalf("at expiresAt the retired key is in Secret %v, projection %v, JWKS %v; want the Secret only", s, p, j)
	}
	waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyUnpublished", old.ID, refreshExpiresAt.Format(time.RFC3339))
	as = get(t, ns, "auth", &authv1alpha1.AuthService{})
	if len(as.Status.Keys) != 3 || !strings.Contains(condition(as, authv1alpha1.KeysReadyCondition).Message, "0 retired key(s) still verify access tokens and 1 more refresh tokens only") {
		t.Errorf("status lists %d keys, KeysReady %q", len(as.Status.Keys), condition(as, authv1alpha1.KeysReadyCondition).Message)
	}
	if want := refreshExpiresAt.Sub(clk.Now()); res.RequeueAfter != want {
		t.Errorf("RequeueAfter = %s, want the refresh expiry in %s (before the next rotation)", res.RequeueAfter, want)
	}

	// A second before its refresh expiry it is still there; at it, it is deleted.
	clk.SetTime(refreshExpiresAt.Add(-time.Second))
	reconcileOnce(t, r, ns, "auth")
	if s, _, _ := where(t, ns, old.ID); !s {
		t.Fatal("the retired key left the Secret before its refresh tokens expired")
	}
	clk.SetTime(refreshExpiresAt)
	reconcileOnce(t, r, ns, "auth")
	if s, p, j := where(t, ns, old.ID); s || p || j {
		t.Fatalf("at refreshExpiresAt the retired key is in Secret %v, projection %v, JWKS %v; want it gone", s, p, j)
	}
	waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyExpired", old.ID)
}
