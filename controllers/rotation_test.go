package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

const (
	shortInterval = time.Hour
	retention     = keylifecycle.DefaultMinPublishTime + 15*time.Minute + 30*time.Second
	// refreshRetention is how long a retired key stays in the Secret with the default
	// refresh lifetime (720h).
	refreshRetention = keylifecycle.DefaultMinPublishTime + 720*time.Hour + 30*time.Second
)

func shortRotation(as *authv1alpha1.AuthService) {
	as.Spec.SigningKeys.RotationInterval = metav1.Duration{Duration: shortInterval}
}

// checkKeyInvariants asserts DESIGN's key lifecycle on what the API holds at now.
func checkKeyInvariants(t *testing.T, ns, name string, now time.Time) keydomain.Set {
	t.Helper()
	set, _ := keySet(t, ns, name) // Decode rejects a retired key that keeps its private part
	active, ok := set.Active()
	if !ok {
		t.Fatal("no active key")
	}
	if _, ok := set.Next(); !ok {
		t.Fatal("no next key published")
	}
	if active.ActivatedAt.Sub(active.CreatedAt) != 0 && active.ActivatedAt.Sub(active.CreatedAt) < shortInterval {
		t.Errorf("active key %s signs since %s but was published only at %s", active.ID, active.ActivatedAt, active.CreatedAt)
	}
	for _, k := range set.Keys {
		if k.State != keydomain.StateRetired {
			continue
		}
		if !k.ExpiresAt.Equal(k.RetiredAt.Add(retention)) {
			t.Errorf("retired key %s expires at %s, want retiredAt + min publish time + maxLifetime + leeway = %s", k.ID, k.ExpiresAt, k.RetiredAt.Add(retention))
		}
		if k.RefreshExpiresAt == nil || !k.RefreshExpiresAt.Equal(k.RetiredAt.Add(refreshRetention)) {
			t.Errorf("retired key %s leaves the Secret at %v, want retiredAt + min publish time + refreshLifetime + leeway = %s", k.ID, k.RefreshExpiresAt, k.RetiredAt.Add(refreshRetention))
		}
		if !now.Before(*k.RefreshExpiresAt) {
			t.Errorf("retired key %s still in the Secret at %s, after its refresh expiry %s", k.ID, now, k.RefreshExpiresAt)
		}
	}
	// The JWKS and the verifiers' projection list exactly the keys whose access window is
	// open: a retired key past expiresAt stays in the Secret for the issuer only.
	var jwks jose.JSONWebKeySet
	cm := get(t, ns, named(ns, name).JWKSConfigMapName(), &corev1.ConfigMap{})
	if err := json.Unmarshal([]byte(cm.Data[JWKSKey]), &jwks); err != nil {
		t.Fatal(err)
	}
	var published, projected, open []string
	for _, k := range jwks.Keys {
		published = append(published, k.KeyID)
	}
	for _, k := range set.Keys {
		if k.State != keydomain.StateRetired || now.Before(*k.ExpiresAt) {
			open = append(open, k.ID)
		}
	}
	var manifest keyfiles.Manifest
	projection := get(t, ns, named(ns, name).PublicKeysSecretName(), &corev1.Secret{})
	if err := json.Unmarshal(projection.Data[keyfiles.ManifestFile], &manifest); err != nil {
		t.Fatal(err)
	}
	for _, k := range manifest.Keys {
		projected = append(projected, k.ID)
		if len(projection.Data[keyfiles.PublicKeyFile(k.ID)]) == 0 {
			t.Errorf("the projection lists key %s without its public key", k.ID)
		}
	}
	if !slices.Equal(published, open) || !slices.Equal(projected, open) || len(projection.Data) != len(open)+1 {
		t.Errorf("JWKS kids %v, projected kids %v (%d files), keys in their access window %v", published, projected, len(projection.Data), open)
	}
	as := get(t, ns, name, &authv1alpha1.AuthService{})
	if as.Status.ActiveKeyID != active.ID || len(as.Status.Keys) != len(set.Keys) {
		t.Errorf("status active %s with %d keys; Secret active %s with %d keys", as.Status.ActiveKeyID, len(as.Status.Keys), active.ID, len(set.Keys))
	}
	return set
}

func TestKeys_RotateOverSeveralIntervals(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	r := newDirectReconciler(t, clk, nil)

	res := reconcileOnce(t, r, ns, "auth")
	if res.RequeueAfter != shortInterval {
		t.Fatalf("first RequeueAfter = %s, want the interval", res.RequeueAfter)
	}
	first := checkKeyInvariants(t, ns, "auth", clk.Now())
	deployment := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	before := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "schedule"))

	var signers []string
	retired := map[string]time.Time{}
	if a, ok := first.Active(); ok {
		signers = append(signers, a.ID)
	}
	for clk.Now().Before(t0.Add(4*shortInterval + time.Minute)) {
		clk.SetTime(clk.Now().Add(res.RequeueAfter))
		res = reconcileOnce(t, r, ns, "auth")
		set := checkKeyInvariants(t, ns, "auth", clk.Now())
		if a, _ := set.Active(); a.ID != signers[len(signers)-1] {
			signers = append(signers, a.ID)
		}
		for _, k := range set.Keys {
			if k.State == keydomain.StateRetired {
				retired[k.ID] = *k.RefreshExpiresAt
			}
		}
		for kid, refreshExpiresAt := range retired {
			if _, ok := set.Lookup(kid); !ok && clk.Now().Before(refreshExpiresAt) {
				t.Fatalf("retired key %s deleted at %s, before its refresh expiry %s", kid, clk.Now(), refreshExpiresAt)
			}
		}
		if res.RequeueAfter > shortInterval {
			t.Fatalf("RequeueAfter %s exceeds the interval", res.RequeueAfter)
		}
	}
	if len(signers) != 5 {
		t.Fatalf("signing keys over 4 intervals = %d, want 5 (4 rotations)", len(signers))
	}
	if len(retired) != 4 {
		t.Errorf("retired keys seen = %d, want 4", len(retired))
	}
	// Every retired key is still in the Secret for refresh tokens (720h), while at most the
	// last one retired is still published (the rest are past their 20m30s access window).
	final := checkKeyInvariants(t, ns, "auth", clk.Now())
	if published := len(final.Published(clk.Now()).Keys); len(final.Keys) != 6 || published > 3 {
		t.Errorf("after 4 rotations at %s: %d keys in the Secret, %d published; want 6 and at most 3", clk.Now().Sub(t0), len(final.Keys), published)
	}
	if got := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "schedule")) - before; got != 4 {
		t.Errorf("authoperator_key_rotations_total grew by %v, want 4", got)
	}
	after := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	if after.Generation != deployment.Generation {
		t.Errorf("key rotation changed the auth-server Deployment (generation %d -> %d): pods would restart", deployment.Generation, after.Generation)
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	if !as.Status.LastRotationTime.Time.Equal(t0.Add(4*shortInterval)) || !as.Status.NextRotationTime.Time.Equal(t0.Add(5*shortInterval)) {
		t.Errorf("lastRotationTime %s nextRotationTime %s", as.Status.LastRotationTime, as.Status.NextRotationTime)
	}
	waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyRotated", signers[4], signers[3], "on schedule")
}

// TestKeys_RestartsNeitherSkipNorDouble plays a restarted operator (a fresh reconciler with
// no memory) between rotations, right after one, in the middle of one, and against a stale read.
func TestKeys_RestartsNeitherSkipNorDouble(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	created, createdSecret := keySet(t, ns, "auth")

	// Between rotations: a restart changes nothing and comes back at the stored schedule.
	clk.SetTime(t0.Add(30 * time.Minute))
	res := reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != createdSecret.ResourceVersion {
		t.Fatal("a restart between rotations rewrote the keys")
	}
	if res.RequeueAfter != 30*time.Minute {
		t.Fatalf("RequeueAfter after restart = %s, want the 30m left of the stored schedule", res.RequeueAfter)
	}

	// On time: one rotation; a restart right after it does not rotate again.
	clk.SetTime(t0.Add(shortInterval))
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	rotated, rotatedSecret := keySet(t, ns, "auth")
	wantActive, _ := created.Next()
	if a, _ := rotated.Active(); a.ID != wantActive.ID {
		t.Fatalf("active after rotation = %s, want the old next %s", a.ID, wantActive.ID)
	}
	clk.SetTime(t0.Add(shortInterval + time.Minute))
	fresh := newDirectReconciler(t, clk, nil)
	fresh.MinKeyPublishTime = time.Second // so only the schedule can hold a second rotation back
	reconcileOnce(t, fresh, ns, "auth")
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != rotatedSecret.ResourceVersion {
		t.Fatal("a restart right after a rotation rotated again")
	}

	// During a rotation: the keys are written, then the operator dies before the status.
	clk.SetTime(t0.Add(2 * shortInterval))
	crashing := newDirectReconciler(t, clk, clientWith(t, interceptor.Funcs{
		SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return errors.New("operator killed before the status write")
		},
	}))
	if _, err := crashing.Reconcile(context.Background(), request(ns, "auth")); err == nil {
		t.Fatal("the interrupted pass reported success")
	}
	midway, midwaySecret := keySet(t, ns, "auth")
	if mustActive(t, midway).ID != mustNext(t, rotated).ID {
		t.Fatal("the interrupted pass did not write its rotation")
	}
	if as := get(t, ns, "auth", &authv1alpha1.AuthService{}); as.Status.ActiveKeyID != mustActive(t, rotated).ID {
		t.Fatal("the status moved though its write failed")
	}
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	after, afterSecret := keySet(t, ns, "auth")
	if afterSecret.ResourceVersion != midwaySecret.ResourceVersion {
		t.Fatal("the restart after an interrupted rotation rotated again")
	}
	if as := get(t, ns, "auth", &authv1alpha1.AuthService{}); as.Status.ActiveKeyID != mustActive(t, after).ID {
		t.Fatalf("status active %s, Secret active %s: the status did not catch up", as.Status.ActiveKeyID, mustActive(t, after).ID)
	}

	// A stale read (a cache behind the API) plans a rotation that already happened: the write
	// carries the old resourceVersion, fails, and nothing rotates twice.
	clk.SetTime(t0.Add(3 * shortInterval))
	stale := midwaySecret.DeepCopy()
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	_, current := keySet(t, ns, "auth")
	staleReader := newDirectReconciler(t, clk, clientWith(t, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if s, ok := obj.(*corev1.Secret); ok && key.Name == "auth-signing-keys" {
				stale.DeepCopyInto(s)
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}))
	res, err := staleReader.Reconcile(context.Background(), request(ns, "auth"))
	if err != nil || res.RequeueAfter != conflictRetry {
		t.Fatalf("stale pass: err %v, RequeueAfter %s; want a quiet retry after %s", err, res.RequeueAfter, conflictRetry)
	}
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != current.ResourceVersion {
		t.Fatal("a stale read overwrote the keys")
	}

	// A failed key write rotates nothing; the next pass rotates exactly once.
	clk.SetTime(t0.Add(4 * shortInterval))
	failing := newDirectReconciler(t, clk, clientWith(t, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				return errors.New("API server unavailable")
			}
			return c.Update(ctx, obj, opts...)
		},
	}))
	if _, err := failing.Reconcile(context.Background(), request(ns, "auth")); err == nil {
		t.Fatal("a failed key write reported success")
	}
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != current.ResourceVersion {
		t.Fatal("keys changed though the write failed")
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	if c := condition(as, authv1alpha1.KeysReadyCondition); c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonReconcileFailed {
		t.Errorf("KeysReady after a failed write = %+v", c)
	}
	before, _ := keySet(t, ns, "auth")
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	final := checkKeyInvariants(t, ns, "auth", clk.Now())
	if a, _ := final.Active(); a.ID != mustNext(t, before).ID {
		t.Fatalf("after the failed write, active = %s, want exactly one rotation onto %s", a.ID, mustNext(t, before).ID)
	}
}

func TestKeys_ManualRotationIsHandledOnceAcrossARestart(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	created, _ := keySet(t, ns, "auth")

	clk.SetTime(t0.Add(10 * time.Minute))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Annotations = map[string]string{authv1alpha1.RotateAnnotation: "2026-11-24T06:10:00Z"}
	})
	before := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "manual"))
	crashing := newDirectReconciler(t, clk, clientWith(t, interceptor.Funcs{
		SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return errors.New("operator killed before the status write")
		},
	}))
	if _, err := crashing.Reconcile(context.Background(), request(ns, "auth")); err == nil {
		t.Fatal("the interrupted pass reported success")
	}
	rotated, secret := keySet(t, ns, "auth")
	if mustActive(t, rotated).ID != mustNext(t, created).ID {
		t.Fatal("the requested rotation did not happen")
	}
	if secret.Annotations[LastRotationRequestAnnotation] != "2026-11-24T06:10:00Z" {
		t.Fatalf("the Secret does not record the handled request: %v", secret.Annotations)
	}
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if _, s := keySet(t, ns, "auth"); s.ResourceVersion != secret.ResourceVersion {
		t.Fatal("the same rotation request was handled twice")
	}
	as = get(t, ns, "auth", as)
	if as.Status.LastRotationRequest != "2026-11-24T06:10:00Z" || !as.Status.NextRotationTime.Time.Equal(t0.Add(10*time.Minute+shortInterval)) {
		t.Errorf("lastRotationRequest %q nextRotationTime %s", as.Status.LastRotationRequest, as.Status.NextRotationTime)
	}
	if got := counterValue(t, keyRotations.WithLabelValues(ns, "auth", "manual")) - before; got != 1 {
		t.Errorf("manual rotations counted = %v, want 1", got)
	}
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}
}

// clientWith is a direct client for the operator's user whose calls pass through funcs first.
func clientWith(t *testing.T, funcs interceptor.Funcs) client.Client {
	t.Helper()
	c, err := client.NewWithWatch(operatorCfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(c, funcs)
}

func mustActive(t *testing.T, s keydomain.Set) keydomain.Key {
	t.Helper()
	k, ok := s.Active()
	if !ok {
		t.Fatal("no active key")
	}
	return k
}

func mustNext(t *testing.T, s keydomain.Set) keydomain.Key {
	t.Helper()
	k, ok := s.Next()
	if !ok {
		t.Fatal("no next key")
	}
	return k
}

// counterValue reads one series of a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestKeys_LifetimeChangesKeepRetiredKeysSafe changes spec.tokens on a live AuthService with
// a retired key: a longer maxLifetime extends its recorded expiry, since tokens of the new
// lifetime may already be in flight; a shorter one never cuts it.
func TestKeys_LifetimeChangesKeepRetiredKeysSafe(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	rotatedAt := t0.Add(shortInterval)
	clk.SetTime(rotatedAt)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	retiredKey := func() (keydomain.Key, authv1alpha1.PublishedKey) {
		set, _ := keySet(t, ns, "auth")
		status := get(t, ns, "auth", &authv1alpha1.AuthService{}).Status
		if set.Keys[0].State != keydomain.StateRetired || status.Keys[0].KeyID != set.Keys[0].ID {
			t.Fatalf("no retired key first in the Secret and the status: %v / %v", set.Keys, status.Keys)
		}
		return set.Keys[0], status.Keys[0]
	}
	if k, _ := retiredKey(); !k.ExpiresAt.Equal(rotatedAt.Add(retention)) {
		t.Fatalf("retired key expires at %s, want %s", k.ExpiresAt, rotatedAt.Add(retention))
	}

	longer := rotatedAt.Add(keylifecycle.DefaultMinPublishTime + 45*time.Minute + 30*time.Second)
	clk.SetTime(rotatedAt.Add(time.Minute))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Spec.Tokens.MaxLifetime = metav1.Duration{Duration: 45 * time.Minute}
	})
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if k, st := retiredKey(); !k.ExpiresAt.Equal(longer) || !st.ExpiresAt.Time.Equal(longer) {
		t.Fatalf("after maxLifetime 45m the retired key expires at %s (status %s), want %s", k.ExpiresAt, st.ExpiresAt, longer)
	}

	clk.SetTime(rotatedAt.Add(2 * time.Minute))
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Spec.Tokens.MaxLifetime = metav1.Duration{Duration: 5 * time.Minute}
	})
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if k, _ := retiredKey(); !k.ExpiresAt.Equal(longer) {
		t.Fatalf("after maxLifetime 5m the retired key expires at %s, want it kept at %s", k.ExpiresAt, longer)
	}
	clk.SetTime(longer.Add(-time.Second))
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	retiredKey()
}
