package keyset_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

func newStore(t *testing.T, dir string) (*keyset.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return keyset.NewStore(dir, slog.New(slog.DiscardHandler), reg, keyset.Options{Debounce: 20 * time.Millisecond, Resync: time.Hour}), reg
}

func runStore(t *testing.T, s *keyset.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func reloads(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authserver_key_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestStore_ReloadsOnAKubeletStyleSwap(t *testing.T) {
	dir := t.TempDir()
	first := tokentest.NewSet(t)
	if err := devkeys.WriteMounted(dir, first); err != nil {
		t.Fatal(err)
	}
	s, reg := newStore(t, dir)
	if s.Current() != nil {
		t.Fatal("a set is current before Load")
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	changes := make(chan *keyset.Set, 4)
	s.OnChange(func(set *keyset.Set) { changes <- set })
	runStore(t, s)
	if got := s.Current().Active().ID; got != tokentest.Active(t, first).ID {
		t.Fatalf("active = %s", got)
	}

	rotated := tokentest.Rotate(t, first)
	if err := devkeys.WriteMounted(dir, rotated); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 5*time.Second, "the rotated set", func() bool { return s.Current().Active().ID == tokentest.Active(t, rotated).ID })
	if got := len(s.Current().Keys()); got != 3 {
		t.Errorf("published keys = %d, want 3 (retired, active, next)", got)
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Error("OnChange listener not called")
	}
	if got := reloads(t, reg, "success"); got != 2 {
		t.Errorf("successful reloads = %v, want 2", got)
	}
	if got := activeKIDs(t, reg); len(got) != 1 || got[0] != tokentest.Active(t, rotated).ID {
		t.Errorf("authserver_active_key_info kids = %v, want only %s", got, tokentest.Active(t, rotated).ID)
	}
}

func activeKIDs(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, mf := range mfs {
		if mf.GetName() != "authserver_active_key_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kid" && m.GetGauge().GetValue() == 1 {
					kids = append(kids, l.GetValue())
				}
			}
		}
	}
	return kids
}

func TestStore_BrokenUpdateKeepsTheLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	good := tokentest.NewSet(t)
	if err := devkeys.WriteMounted(dir, good); err != nil {
		t.Fatal(err)
	}
	s, reg := newStore(t, dir)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	runStore(t, s)

	// A Secret update whose manifest names a key file that is not there.
	broken := filepath.Join(dir, "..broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `{"version":1,"alg":"ES256","keys":[{"kid":"missing","state":"active","createdAt":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(broken, keyfiles.ManifestFile), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..broken", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 5*time.Second, "the failed reload to be counted", func() bool { return reloads(t, reg, "error") >= 1 })
	if got := s.Current().Active().ID; got != tokentest.Active(t, good).ID {
		t.Fatalf("active after broken update = %s, want the last good %s", got, tokentest.Active(t, good).ID)
	}

	fixed := tokentest.Rotate(t, good)
	if err := devkeys.WriteMounted(dir, fixed); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 5*time.Second, "the fixed set", func() bool { return s.Current().Active().ID == tokentest.Active(t, fixed).ID })
}

func TestStore_LoadFailsOnAMissingDirectory(t *testing.T) {
	s, reg := newStore(t, filepath.Join(t.TempDir(), "absent"))
	if err := s.Load(); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
	if s.Current() != nil {
		t.Fatal("a set is current after a failed first load")
	}
	if got := reloads(t, reg, "error"); got != 1 {
		t.Errorf("error reloads = %v, want 1", got)
	}
}

func TestSet_JWKSHasEveryKeyPublicPartsOnly(t *testing.T) {
	set := tokentest.Rotate(t, tokentest.NewSet(t))
	ks, err := keyset.NewSet(set)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != len(set.Keys) {
		t.Fatalf("JWKS has %d keys, want %d", len(doc.Keys), len(set.Keys))
	}
	for i, k := range doc.Keys {
		if k["kid"] != set.Keys[i].ID || k["kty"] != "EC" || k["crv"] != "P-256" || k["use"] != "sig" || k["alg"] != "ES256" {
			t.Errorf("key %d = %v", i, k)
		}
		for _, coord := range []string{"x", "y"} {
			b, err := base64.RawURLEncoding.DecodeString(k[coord].(string))
			if err != nil || len(b) != 32 {
				t.Errorf("key %d %s: %d bytes, err %v; want 32", i, coord, len(b), err)
			}
		}
		if _, ok := k["d"]; ok {
			t.Errorf("key %d has a private part", i)
		}
		if len(k) != 7 {
			t.Errorf("key %d has members %v, want exactly kty crv x y kid use alg", i, k)
		}
	}
}

// TestStore_RefreshKeysAreTheIssuersOnlyAndGoWithARevokedKey: a store loading the whole
// Secret for signing (the issuer) holds each key's refresh-token key, found by its kid
// and naming its signing key; one loading it as a verifier holds none; a revoked kid
// takes its refresh-token key with it.
func TestStore_RefreshKeysAreTheIssuersOnlyAndGoWithARevokedKey(t *testing.T) {
	dir := t.TempDir()
	set := tokentest.NewSet(t)
	if err := devkeys.WriteMounted(dir, set); err != nil {
		t.Fatal(err)
	}
	active := tokentest.Active(t, set)
	issuer := keyset.NewStore(dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), keyset.Options{Private: true})
	verifier := keyset.NewStore(dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), keyset.Options{})
	for _, s := range []*keyset.Store{issuer, verifier} {
		if err := s.Load(); err != nil {
			t.Fatal(err)
		}
	}
	if pub, of, ok := issuer.Current().LookupRefresh(active.Refresh.ID); !ok || of != active.ID || !pub.Equal(active.Refresh.Public) {
		t.Fatalf("the issuer's set: refresh key %v of %q (%v)", pub, of, ok)
	}
	if _, _, ok := verifier.Current().LookupRefresh(active.Refresh.ID); ok {
		t.Fatal("the verifier's set holds a refresh-token key")
	}
	issuer.RevokeKeys(active.ID)
	if _, _, ok := issuer.Current().LookupRefresh(active.Refresh.ID); ok {
		t.Fatal("the refresh-token key of a revoked kid still verifies")
	}
	next, _ := set.Next()
	if _, _, ok := issuer.Current().LookupRefresh(next.Refresh.ID); !ok {
		t.Fatal("revoking one kid took another key's refresh-token key")
	}
}
