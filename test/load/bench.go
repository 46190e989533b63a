package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bench runs the comparisons of one `make bench`.
type bench struct {
	ctx      context.Context
	o        options
	wrk      string
	script   string
	work     string
	srv      servers
	redisPID int
	sup      *supplies
	out      io.Writer
	files    int
	// gateway is the ServiceAccount token of the introspection runs' caller.
	gateway string
}

// side is one half of a comparison: the auth server's path or its floor.
type side struct {
	name, server, path, method, body string
	// unique sides get tokens no server has seen, for every run; the others the
	// recurring tokens (or, for a floor compared with a unique side, the floor's).
	unique    bool
	recurring func() []string
	// stateful sides are auth servers (their CPU and Redis' are measured).
	stateful bool
	// introspect sends each token in an introspection request by the gateway, whose
	// ServiceAccount token the bench's caller is (see introspectionLine).
	introspect bool
}

// comparison is one row of the table: A against its floor B.
type comparison struct {
	row, floorName string
	a, b           side
	// minRatio is the target of A's req/s over B's.
	minRatio float64
	// max and half are the runs at maximum rate and at half of A's, by round.
	maxA, maxB, halfA, halfB []result
	halfRate                 int
}

// maxP99Ratio is the target of a path's p99 at half its maximum rate over its floor's.
const maxP99Ratio = 1.3

// goTargets are the Go benchmark rows' targets.
const (
	maxNonCryptoMicros = 5.0
	maxHitAllocs       = 2
)

func (b *bench) comparisons(login string) []*comparison {
	recurring := func() []string { return b.sup.recurring }
	verifyHit := side{name: "verify, cache hit", server: "verifier", path: "/auth/verify", method: http.MethodGet, recurring: recurring, stateful: true}
	verifyMiss := side{name: "verify, cache miss", server: "verifier", path: "/auth/verify", method: http.MethodGet, unique: true, stateful: true}
	floorUnique := func() []string { return b.sup.floorUnique }
	logins := func() []string { return []string{login, login} }
	return []*comparison{
		{row: "verify, cache hit, 1 000 recurring tokens", floorName: "plain net/http handler writing the same status, headers and body", minRatio: 0.85,
			a: verifyHit,
			b: side{name: "floor: plain handler, same answer", server: "plain", path: "/", method: http.MethodGet, recurring: recurring}},
		{row: "verify, cache miss (unique tokens)", floorName: "ES256 verify + 200", minRatio: 0.9,
			a: verifyMiss,
			b: side{name: "floor: ES256 verify + 200", server: "crypto", path: "/", method: http.MethodGet, recurring: floorUnique}},
		{row: "logout, unique tokens (with session checks)", floorName: "ES256 verify + 200", minRatio: 0.85,
			a: side{name: "logout", server: "verifier", path: "/auth/logout", method: http.MethodPost, unique: true, stateful: true},
			b: side{name: "floor: ES256 verify + 200", server: "crypto", path: "/", method: http.MethodPost, recurring: floorUnique}},
		{row: "introspection, cache hit, 1 000 recurring tokens", floorName: "verify, cache hit (the same check and cache)", minRatio: 0.8,
			a: side{name: "introspection, cache hit", server: "verifier", path: "/auth/introspect", method: http.MethodPost, recurring: recurring, stateful: true, introspect: true},
			b: verifyHit},
		{row: "introspection, cache miss (unique tokens)", floorName: "verify, cache miss (the same check)", minRatio: 0.85,
			a: side{name: "introspection, cache miss", server: "verifier", path: "/auth/introspect", method: http.MethodPost, unique: true, stateful: true, introspect: true},
			b: verifyMiss},
		{row: "token issuance", floorName: "ES256 sign + 200 (two signatures, as an issuance)", minRatio: 0.85,
			a: side{name: "issuance", server: "issuer", path: "/auth/token", method: http.MethodPost, body: issueBody, recurring: logins, stateful: true},
			b: side{name: "floor: 2x ES256 sign + 200", server: "sign", path: "/", method: http.MethodPost, body: issueBody, recurring: logins}},
	}
}

func (b *bench) file(ext string) string {
	b.files++
	return filepath.Join(b.work, "run"+strconv.Itoa(b.files)+"."+ext)
}

// tokens are the token lines of one run of s: n fresh tokens for a unique side, each
// wrapped in an introspection request for an introspecting one.
func (b *bench) tokens(s side, n int) ([]string, error) {
	toks := s.recurring
	if s.unique {
		fresh, err := b.sup.fresh(n)
		if err != nil {
			return nil, err
		}
		toks = func() []string { return fresh }
	}
	if !s.introspect {
		return toks(), nil
	}
	lines := make([]string, 0, n)
	for _, tok := range toks() {
		lines = append(lines, introspectionLine(b.gateway, tok))
	}
	return lines, nil
}

func (b *bench) pids(s side) (server, redis int) {
	server = b.srv.pid[s.server]
	if s.stateful {
		redis = b.redisPID
	}
	return server, redis
}

// maxRun drives s with wrk for the run's duration.
func (b *bench) maxRun(s side) (result, error) {
	toks, err := b.tokens(s, b.o.maxRate*int(b.o.duration.Seconds()))
	if err != nil {
		return result{}, err
	}
	return b.wrkRun(s, wrkSpec{name: s.name + ", max rate", duration: b.o.duration}, toks)
}

// wrkRun completes spec for s with toks (and s's body) and runs it.
func (b *bench) wrkRun(s side, spec wrkSpec, toks []string) (result, error) {
	spec.url, spec.method, spec.tokens = b.srv.url[s.server]+s.path, s.method, b.file("tokens")
	if err := writeLines(spec.tokens, toks); err != nil {
		return result{}, err
	}
	if s.body != "" {
		spec.body = b.file("body")
		if err := writeLines(spec.body, []string{s.body}); err != nil {
			return result{}, err
		}
	}
	spec.serverPID, spec.redisPID = b.pids(s)
	r, err := runWrk(b.ctx, b.wrk, b.script, spec)
	if err == nil && s.unique && r.Wraps > 0 {
		fmt.Fprintf(b.out, "  warning: %s used its %d tokens up and presented some twice; raise -max-rate\n", s.name, len(toks))
	}
	return r, err
}

// halfRun drives s at a constant rate, with paced wrk or vegeta (-paced).
func (b *bench) halfRun(s side, rate int) (result, error) {
	toks, err := b.tokens(s, int(float64(rate)*b.o.halfDuration.Seconds()*1.2)+10)
	if err != nil {
		return result{}, err
	}
	name := fmt.Sprintf("%s, at %d/s", s.name, rate)
	if b.o.paced == pacedWrk {
		return b.wrkRun(s, wrkSpec{name: name, duration: b.o.halfDuration, rate: rate}, toks)
	}
	targets := b.file("json")
	if err := writeTargets(targets, s.method, b.srv.url[s.server]+s.path, toks, s.body); err != nil {
		return result{}, err
	}
	spec := attackSpec{name: name, targets: targets, lazy: s.unique,
		rate: rate, duration: b.o.halfDuration}
	spec.serverPID, spec.redisPID = b.pids(s)
	return attack(b.ctx, b.o.vegeta, b.work, spec)
}

// runAll runs every comparison A B A B at maximum rate, then at half of A's maximum,
// then the Go benchmarks A B A B.
func (b *bench) runAll(benchBin, benchDir, login string, base *baseline) (*report, error) {
	rep := &report{paced: b.o.paced}
	rep.rows = b.comparisons(login)
	for _, c := range rep.rows {
		for range b.o.rounds {
			ra, err := b.maxRun(c.a)
			if err != nil {
				return nil, err
			}
			rb, err := b.maxRun(c.b)
			if err != nil {
				return nil, err
			}
			c.maxA, c.maxB = append(c.maxA, ra), append(c.maxB, rb)
			rep.runs = append(rep.runs, ra, rb)
			fmt.Fprintf(b.out, "  %s: %.0f req/s; %s: %.0f req/s (load %s)\n", c.a.name, ra.Throughput, c.b.name, rb.Throughput, loadAverage())
		}
	}
	for _, c := range rep.rows {
		c.halfRate = max(1, int(mean(c.maxA, throughput)/2))
		for range b.o.rounds {
			ra, err := b.halfRun(c.a, c.halfRate)
			if err != nil {
				return nil, err
			}
			rb, err := b.halfRun(c.b, c.halfRate)
			if err != nil {
				return nil, err
			}
			c.halfA, c.halfB = append(c.halfA, ra), append(c.halfB, rb)
			rep.runs = append(rep.runs, ra, rb)
			fmt.Fprintf(b.out, "  at %d/s: %s p99 %s; %s p99 %s (load %s)\n", c.halfRate, c.a.name, ms(ra.Latencies.P99), c.b.name, ms(rb.Latencies.P99), loadAverage())
		}
	}
	for range b.o.rounds {
		v, err := runGoBench(b.ctx, benchBin, benchDir, "Verify", b.o.benchtime)
		if err != nil {
			return nil, err
		}
		s, err := runGoBench(b.ctx, benchBin, benchDir, "VerifySignatureOnly", b.o.benchtime)
		if err != nil {
			return nil, err
		}
		rep.verify, rep.sigOnly = append(rep.verify, v), append(rep.sigOnly, s)
		fmt.Fprintf(b.out, "  BenchmarkVerify %.1f µs/op; BenchmarkVerifySignatureOnly %.1f µs/op (load %s)\n", v.NsPerOp/1e3, s.NsPerOp/1e3, loadAverage())
	}
	hit, err := runGoBench(b.ctx, benchBin, benchDir, "VerifyCachedServer", b.o.benchtime)
	if err != nil {
		return nil, err
	}
	rep.hit = hit
	if base != nil {
		if rep.baseline, err = b.runBaseline(benchBin, benchDir, *base); err != nil {
			return nil, err
		}
		rep.baselineRef = base.ref
	}
	return rep, nil
}

// report is what a run found.
type report struct {
	// paced names the generator of the constant-rate runs.
	paced           string
	rows            []*comparison
	runs            []result
	verify, sigOnly []goBench
	hit             goBench
	// baseline are the Go benchmarks beside the same ones at baselineRef (-baseline).
	baseline    []baselineRow
	baselineRef string
}

func throughput(r result) float64 { return r.Throughput }
func p99(r result) float64        { return float64(r.Latencies.P99) }
func sentRate(r result) float64   { return r.Rate }

func mean(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	var sum float64
	for _, r := range rs {
		sum += f(r)
	}
	return sum / float64(len(rs))
}

func meanNs(bs []goBench) float64 {
	var sum float64
	for _, b := range bs {
		sum += b.NsPerOp
	}
	return sum / float64(max(1, len(bs)))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r *report) print(out io.Writer) {
	fmt.Fprintln(out)
	fmt.Fprintln(out, "every run, in order (CPU µs per request of the server, Redis and the generator):")
	printRuns(out, r.runs)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| path | generator | figure | floor | floor's figure | ratio | target | |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range r.rows {
		a, b := mean(c.maxA, throughput), mean(c.maxB, throughput)
		q := ratio(a, b)
		fmt.Fprintf(out, "| %s | wrk | %.0f req/s | %s | %.0f req/s | %.2fx | >= %.2fx | %s |\n", c.row, a, c.floorName, b, q, c.minRatio, verdict(q >= c.minRatio))
	}
	for _, c := range r.rows {
		a, b := mean(c.halfA, p99), mean(c.halfB, p99)
		q := ratio(a, b)
		v := verdict(q <= maxP99Ratio)
		heldA, heldB := mean(c.halfA, sentRate), mean(c.halfB, sentRate)
		if held := min(heldA, heldB); held < 0.9*float64(c.halfRate) {
			v += fmt.Sprintf(" (%s sent only %.0f/s: generator-bound)", r.paced, held)
		}
		fmt.Fprintf(out, "| p99 of %s at %d/s (half its max; held %.0f/s and %.0f/s) | %s | %s | %s at the same rate | %s | %.2fx | <= %.1fx | %s |\n",
			c.row, c.halfRate, heldA, heldB, r.paced, ms(time.Duration(a)), c.floorName, ms(time.Duration(b)), q, maxP99Ratio, v)
	}
	v, s := meanNs(r.verify), meanNs(r.sigOnly)
	extra := (v - s) / 1e3
	rounds := make([]string, len(r.verify))
	for i := range r.verify {
		rounds[i] = fmt.Sprintf("%+.1f", (r.verify[i].NsPerOp-r.sigOnly[i].NsPerOp)/1e3)
	}
	fmt.Fprintf(out, "| BenchmarkVerify, non-crypto part | go test | %.1f µs/op | BenchmarkVerifySignatureOnly | %.1f µs/op | %+.1f µs (rounds: %s) | <= +%.0f µs | %s |\n",
		v/1e3, s/1e3, extra, strings.Join(rounds, ", "), maxNonCryptoMicros, verdict(extra <= maxNonCryptoMicros))
	fmt.Fprintf(out, "| cache-hit path, allocations (BenchmarkVerifyCachedServer) | go test -benchmem | %d allocs/op, %.1f µs/op | | | | <= %d | %s |\n",
		r.hit.AllocsPerOp, r.hit.NsPerOp/1e3, maxHitAllocs, verdict(r.hit.AllocsPerOp <= maxHitAllocs))
	printBaseline(out, r.baselineRef, r.baseline)
}

func printRuns(out io.Writer, rs []result) {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %-48s %8.0f req/s  p50 %s  p99 %s  %s  CPU %s/%s/%s\n", r.Name, r.Throughput,
			ms(r.Latencies.P50), ms(r.Latencies.P99), r.codes(), r.ServerCPU, r.RedisCPU, r.GeneratorCPU)
	}
	fmt.Fprint(out, b.String())
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}
