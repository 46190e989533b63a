package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// TestWrk_IntrospectionLinesSendTheCallerAndAFormBody: a token line made by
// introspectionLine becomes a request with the caller's bearer and the token in a form
// body, each token once.
func TestWrk_IntrospectionLinesSendTheCallerAndAFormBody(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatalf("wrk not found (make test installs it through make wrk): %v", err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wrong []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer gateway-token" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Method != http.MethodPost {
			wrong = append(wrong, r.Method+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type"))
		}
		seen[r.PostForm.Get("token")]++
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	lines := make([]string, 2000)
	for i := range lines {
		lines[i] = introspectionLine("gateway-token", "token-"+strconv.Itoa(i)+"+/=")
	}
	spec := wrkSpec{name: "introspection", url: srv.URL, method: http.MethodPost, tokens: filepath.Join(dir, "tokens"), duration: time.Second, rate: 500}
	if err := writeLines(spec.tokens, lines); err != nil {
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
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 || r.Requests == 0 || r.Codes["2xx"] != r.Requests {
		t.Fatalf("%d requests (%v), %d wrong, such as %q", r.Requests, r.Codes, len(wrong), wrong)
	}
	for tok, n := range seen {
		if n != 1 || !strings.HasPrefix(tok, "token-") || !strings.HasSuffix(tok, "+/=") {
			t.Errorf("token %q introspected %d times", tok, n)
		}
	}
}
