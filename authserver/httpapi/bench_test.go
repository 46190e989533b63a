package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// issueMany signs n distinct seed-shaped tokens with the active key.
func issueMany(b *testing.B, set keydomain.Set, n int) []string {
	b.Helper()
	active := tokentest.Active(b, set)
	toks := make([]string, n)
	for i := range toks {
		c := tokentest.Claims(time.Hour)
		c.User.Auth.ID = "session-" + strconv.Itoa(i)
		tok, err := token.Issue(active, c)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}

// serveParallel runs the handler directly (no sockets) for every token in turn. Each
// goroutine reuses one request and one writer, so that what is timed and counted is
// the server's work, not httptest's.
func serveParallel(b *testing.B, h *harness, method, path string, toks []string, want int) {
	b.Helper()
	bearers := make([]string, len(toks))
	for i, tok := range toks {
		bearers[i] = "Bearer " + tok
	}
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", bearers[0])
		w := &discardWriter{h: make(http.Header, 16)}
		for pb.Next() {
			req.Header["Authorization"][0] = bearers[int(next.Add(1)-1)%len(bearers)]
			clear(w.h)
			w.code = 0
			h.api.ServeHTTP(w, req)
			if w.code != want {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

// BenchmarkLogout logs out a fresh token on every iteration against the real Redis.
func BenchmarkLogout(b *testing.B) {
	h := newHarness(b, nil, onRedis)
	toks := issueMany(b, h.set, b.N)
	serveParallel(b, h, http.MethodPost, "/auth/logout", toks, http.StatusOK)
}

// BenchmarkLogoutCached is BenchmarkLogout with the verified-token cache on, as the
// verifiers run by default: each logout also drops what it revokes from the cache,
// and hears its own revocation back on the subscription.
func BenchmarkLogoutCached(b *testing.B) {
	h := newHarness(b, nil, onRedis, withCache(10000))
	toks := issueMany(b, h.set, b.N)
	serveParallel(b, h, http.MethodPost, "/auth/logout", toks, http.StatusOK)
}

// BenchmarkVerify checks 1 000 recurring tokens, as forward-auth sees them.
func BenchmarkVerify(b *testing.B) {
	h := newHarness(b, nil, onRedis)
	toks := issueMany(b, h.set, 1000)
	serveParallel(b, h, http.MethodGet, "/auth/verify", toks, http.StatusOK)
}

// BenchmarkVerifySignatureOnly is the crypto floor of the two above: one ES256
// verification of the same tokens, with no HTTP and no Redis.
func BenchmarkVerifySignatureOnly(b *testing.B) {
	set := mustSet(b)
	toks := issueMany(b, set, 1000)
	v := token.NewVerifier(tokentest.Static(b, set), token.VerifierOptions{Leeway: testLeeway})
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(toks[int(next.Add(1)-1)%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyCached checks the same 1 000 recurring tokens with the verified-token
// cache on: after the first round every check is a cache hit.
func BenchmarkVerifyCached(b *testing.B) {
	h := newHarness(b, nil, onRedis, withCache(10000))
	toks := issueMany(b, h.set, 1000)
	serveParallel(b, h, http.MethodGet, "/auth/verify", toks, http.StatusOK)
}

// BenchmarkIssue obtains a new session per iteration through POST /auth/token, as
// the login service does: the caller's ServiceAccount token reviewed by a real API
// server (then answered from the review cache), a read of the store's generation
// marker and the issuance script (the session's record), two ES256 signatures.
func BenchmarkIssue(b *testing.B) {
	d := newDeployment(b, false, nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(userBody))
			req.Header.Set("Authorization", "Bearer "+d.login)
			rec := httptest.NewRecorder()
			d.issuer.api.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkRefresh exchanges a fresh refresh token per iteration: one verification,
// the rotation script in Redis (the session's record rewritten), two signatures.
func BenchmarkRefresh(b *testing.B) {
	d := newDeployment(b, false, nil)
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = d.issue(b).RefreshToken
	}
	serveParallel(b, d.issuer, http.MethodGet, "/auth/refresh", toks, http.StatusCreated)
}

// discardWriter is a ResponseWriter that keeps nothing but its header map, which the
// benchmark clears between requests: what the server allocates per request is then
// all that -benchmem counts.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkVerifyCachedServer is BenchmarkVerifyCached with the cache filled before
// the timer starts: allocs/op is the cache-hit path's own (the issue's target: at
// most 2).
func BenchmarkVerifyCachedServer(b *testing.B) {
	h := newHarness(b, nil, onRedis, withCache(10000))
	toks := issueMany(b, h.set, 1000)
	for _, tok := range toks {
		if r := h.do(http.MethodGet, "/auth/verify", tok); r.StatusCode != http.StatusOK {
			b.Fatalf("warming the cache: status %d: %s", r.StatusCode, r.body)
		}
	}
	serveParallel(b, h, http.MethodGet, "/auth/verify", toks, http.StatusOK)
}

// benchParallelism is the goroutines per core of the request benchmarks: a server
// answers many connections at once, so a request's wait for Redis overlaps others'
// work (and the pipeline batches their commands), as under the load run. With one
// goroutine per core the benchmarks would time a Redis round trip's latency, which
// leaves the cores idle, rather than what a request costs.
const benchParallelism = 16
