package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPacedWrk_HoldsTheAskedRateWithEveryTokenOnce runs Debian's wrk with the token
// script, paced, against a loopback server: it holds about the rate asked for (a little
// less, as each pause follows a response, more so on a loaded machine; the bounds leave
// room for the random pauses and the first requests, which no pause precedes: unpaced,
// wrk sends tens of thousands a second here), and every request carried its own token.
func TestPacedWrk_HoldsTheAskedRateWithEveryTokenOnce(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatalf("wrk not found (make test installs it through make wrk): %v", err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Authorization")]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	const rate, duration = 1000, 2 * time.Second
	dir := t.TempDir()
	toks := make([]string, 3*rate)
	for i := range toks {
		toks[i] = "token-" + strconv.Itoa(i)
	}
	spec := wrkSpec{name: "paced", url: srv.URL, method: http.MethodGet, tokens: filepath.Join(dir, "tokens"), duration: duration, rate: rate}
	if err := writeLines(spec.tokens, toks); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "tokens.lua")
	if err := writeScript(script); err != nil {
		t.Fatal(err)
	}
	r, err := runWrk(context.Background(), wrk, script, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Throughput < 0.8*rate || r.Throughput > 1.15*rate {
		t.Errorf("held %.0f/s, asked for %d/s", r.Throughput, rate)
	}
	if r.Codes["2xx"] != r.Requests || r.Wraps != 0 {
		t.Errorf("%d requests, %v, %d wraps", r.Requests, r.Codes, r.Wraps)
	}
	mu.Lock()
	defer mu.Unlock()
	for tok, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times", tok, n)
		}
	}
	t.Logf("held %.0f/s of %d/s, p50 %s, p99 %s", r.Throughput, rate, r.Latencies.P50, r.Latencies.P99)
}
