package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

func TestJWKS_PublishesEveryKeyWithMaxAge(t *testing.T) {
	h := newHarness(t, nil)
	rotated := tokentest.Rotate(t, h.set)
	if err := devkeys.WriteMounted(h.dir, rotated); err != nil {
		t.Fatal(err)
	}
	if err := h.keys.Load(); err != nil {
		t.Fatal(err)
	}
	r := h.do(http.MethodGet, "/.well-known/jwks.json", "")
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "public, max-age=300" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, headers %v", r.StatusCode, r.Header)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want retired, active and next", len(doc.Keys))
	}
	for i, k := range doc.Keys {
		if k["kid"] != rotated.Keys[i].ID || k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || len(k["x"]) != 43 || len(k["y"]) != 43 || k["d"] != "" {
			t.Errorf("key %d = %v", i, k)
		}
	}
}

func TestPublicKey_IsTheActiveKeyAsPEM(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodGet, "/auth/public-key", "")
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/x-pem-file" {
		t.Fatalf("status %d, Content-Type %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	block, _ := pem.Decode([]byte(r.body))
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("body is not a PUBLIC KEY PEM: %q", r.body)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(*ecdsa.PublicKey).Equal(tokentest.Active(t, h.set).Public) {
		t.Error("served key is not the active key")
	}
}

func TestKeys_NotLoadedIs503(t *testing.T) {
	h := noKeysServer(t, newHarness(t, nil))
	for _, path := range []string{"/.well-known/jwks.json", "/auth/public-key"} {
		h.do(http.MethodGet, path, "").expect(t, http.StatusServiceUnavailable, errorBody("signing keys not loaded"))
	}
	h.admin("/readyz").expect(t, http.StatusServiceUnavailable, errorBody("signing keys not loaded"))
	h.do(http.MethodPost, "/auth/logout", "a.b.c").expect(t, http.StatusServiceUnavailable, errorBody("signing keys not loaded"))
	h.do(http.MethodGet, "/auth/verify", "a.b.c").expect(t, http.StatusServiceUnavailable, errorBody("signing keys not loaded"))
}

// TestReload_DuringTrafficNoValidTokenFails rotates the keys twice, kubelet-style, while
// clients verify tokens of every generation in a loop: no request may fail, and tokens
// of the newly active key verify once the rotation has been seen.
func TestReload_DuringTrafficNoValidTokenFails(t *testing.T) {
	h := newHarness(t, nil)
	stop := make(chan struct{})
	var mu sync.Mutex
	toks := []string{tokentest.Issue(t, h.set, time.Hour), tokentest.IssueSeedShaped(t, h.set, time.Hour)}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				tok := toks[i%len(toks)]
				mu.Unlock()
				r := h.do(http.MethodGet, "/auth/verify", tok)
				if r.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("verify during reload: %d %s", r.StatusCode, r.body)
				}
			}
		}()
	}
	set := h.set
	for range 2 {
		time.Sleep(100 * time.Millisecond)
		set = tokentest.Rotate(t, set)
		if err := devkeys.WriteMounted(h.dir, set); err != nil {
			t.Fatal(err)
		}
		waitActive(t, h, tokentest.Active(t, set).ID)
		mu.Lock()
		toks = append(toks, tokentest.Issue(t, set, time.Hour))
		mu.Unlock()
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if ok.Load() == 0 || failed.Load() != 0 {
		t.Fatalf("verified %d, failed %d during two rotations", ok.Load(), failed.Load())
	}
}

// waitActive waits until the server's watcher has swapped in the set whose active key
// is kid.
func waitActive(t *testing.T, h *harness, kid string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.keys.Current().Active().ID != kid {
		if time.Now().After(deadline) {
			t.Fatal("rotation not seen by the watcher within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
