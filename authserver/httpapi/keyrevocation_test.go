package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestKeyRevocation_ReachesEveryVerifierWithinASecond runs the issuer's Secret watch
// against a real API server and two verifiers whose mounted key files still hold the
// key (the kubelet syncs them a minute or two later). Removing a kid from the Secret
// makes both verifiers refuse its tokens, cached or not, within 1 s of the write,
// while tokens of the other keys still pass.
func TestKeyRevocation_ReachesEveryVerifierWithinASecond(t *testing.T) {
	kc, _ := kube(t)
	ctx := context.Background()
	// The key to revoke is retired after one rotation; it signs with the private part
	// it had while active.
	before := mustSet(t)
	set := tokentest.Rotate(t, before)
	oldKey := tokentest.Active(t, before)
	dir := t.TempDir()
	if err := devkeys.WriteMounted(dir, set); err != nil {
		t.Fatal(err)
	}
	prefix := strings.NewReplacer("/", ":").Replace(t.Name()) + ":"
	a := startHarness(t, onPackageRedis(t), dir, set, prefix, withCache(100))
	b := startHarness(t, onPackageRedis(t), dir, set, prefix, withCache(100))

	files, err := keyfiles.Encode(set)
	if err != nil {
		t.Fatal(err)
	}
	ns := "keys"
	_, _ = kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	secret, err := kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-signing-keys"}, Data: files,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issuerKeys := keyset.NewStore(dir, slog.New(slog.DiscardHandler), nil, keyset.Options{Private: true})
	if err := issuerKeys.Load(); err != nil {
		t.Fatal(err)
	}
	var sink syncBuffer
	watchLog := slog.New(slog.NewJSONHandler(&sink, nil))
	watchCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := issuerKeys.FollowSecret(watchCtx, keyset.SecretConfig{
			Client: kc, Namespace: ns, Name: secret.Name, Revocations: a.sessions, Logger: watchLog,
		}); err != nil {
			t.Errorf("following the key Secret: %v", err)
		}
	}()
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})

	old := tokentest.Sign(t, oldKey.Private, oldKey.ID, tokentest.Claims(15*time.Minute))
	oldNoKid := tokentest.Sign(t, oldKey.Private, "", tokentest.Claims(15*time.Minute))
	current := tokentest.Issue(t, set, 15*time.Minute)
	for _, h := range []*harness{a, b} {
		for _, tok := range []string{old, oldNoKid, current} {
			h.do(http.MethodGet, "/auth/verify", tok)
			if r := h.do(http.MethodGet, "/auth/verify", tok); r.StatusCode != http.StatusOK {
				t.Fatalf("before the revocation: %d %s", r.StatusCode, r.body)
			}
		}
	}

	var kept keydomain.Set
	for _, k := range set.Keys {
		if k.ID != oldKey.ID {
			kept.Keys = append(kept.Keys, k)
		}
	}
	withRevoked := files
	files, err = keyfiles.Encode(kept)
	if err != nil {
		t.Fatal(err)
	}
	secret.Data = files
	if _, err := kc.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for _, h := range []*harness{a, b} {
		for _, tok := range []string{old, oldNoKid} {
			for {
				r := h.do(http.MethodGet, "/auth/verify", tok)
				if r.StatusCode == http.StatusUnauthorized {
					break
				}
				if time.Since(written) > time.Second {
					t.Fatalf("a token of the revoked key still answers %d %s %s after the Secret's update", r.StatusCode, r.body, time.Since(written))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if r := h.do(http.MethodGet, "/auth/verify", current); r.StatusCode != http.StatusOK {
			t.Fatalf("a token of the active key after the revocation: %d %s", r.StatusCode, r.body)
		}
	}
	t.Logf("both verifiers refuse the revoked key %s after the Secret's update", time.Since(written))
	// The issuer's audit trail names the revoked kid, once, and holds no key material.
	got := auditLines(t, sink.String())
	if len(got) != 1 || got[0]["event"] != "key-revoked" || got[0]["kid"] != oldKey.ID || len(got[0]) != 4 {
		t.Errorf("audit lines of the revocation = %v, want one key-revoked line naming %s", got, oldKey.ID)
	}
	for name, data := range withRevoked {
		if strings.Contains(sink.String(), string(data)) {
			t.Errorf("the issuer's log holds the Secret's %s", name)
		}
	}
	// A verifier started later, its mount still stale, reads the revocation from Redis.
	h := startHarness(t, onPackageRedis(t), dir, set, prefix)
	h.do(http.MethodGet, "/auth/verify", old).expect(t, http.StatusUnauthorized, errorBody("invalid or expired jwt, internal=unknown kid"))
}
