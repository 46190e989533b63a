package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/roles"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// keysOf counts the Redis keys under h's prefix.
func keysOf(t *testing.T, h *harness) int {
	t.Helper()
	n := 0
	iter := h.rdb.Scan(context.Background(), 0, h.prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// onlyKey is the one key under h's prefix that matches pattern.
func onlyKey(t *testing.T, h *harness, pattern string) string {
	t.Helper()
	keys, _, err := h.rdb.Scan(context.Background(), 0, h.prefix+pattern, 100000).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %s%s: %v, %v; want one", h.prefix, pattern, keys, err)
	}
	return keys[0]
}

// claimsOf reads a token's claims without checking them.
func claimsOf(t *testing.T, raw string) token.Claims {
	t.Helper()
	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefresh_ManyRefreshesOfOneSessionKeepTheKeyCountConstant refreshes one session
// 1 500 times: the store holds as many keys after as after the first refresh (one
// per session, not one per refresh), and the last pair works.
func TestRefresh_ManyRefreshesOfOneSessionKeepTheKeyCountConstant(t *testing.T) {
	d := newDeployment(t, false, nil)
	s := d.issue(t)
	next, r := d.refresh(t, http.MethodPost, s.RefreshToken)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("first refresh: %d %s", r.StatusCode, r.body)
	}
	after := keysOf(t, d.issuer)
	for i := range 1500 {
		next, r = d.refresh(t, http.MethodPost, next.RefreshToken)
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("refresh %d: %d %s", i+2, r.StatusCode, r.body)
		}
	}
	if got := keysOf(t, d.issuer); got != after {
		t.Fatalf("%d keys after 1 501 refreshes of one session, %d after the first: the store grows with refreshes", got, after)
	}
	if r := d.verifier.do(http.MethodGet, "/auth/verify", next.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("the last pair: %d %s", r.StatusCode, r.body)
	}
}

// TestSessions_AFullStoreStillLetsUsersLogOut fills a real Redis to its maxmemory
// (noeviction, as the managed Redis runs): logout, logout everywhere and refresh of
// sessions that exist still work; only a new login is refused, with 503.
func TestSessions_AFullStoreStillLetsUsersLogOut(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	d := newDeployment(t, false, srv)
	a, b, c := d.issue(t), d.issue(t), d.issue(t)
	fillRedis(t, srv)
	d.verifier.do(http.MethodPost, "/auth/logout", a.Token).expect(t, http.StatusOK, verifiedUser)
	d.verifier.do(http.MethodGet, "/auth/verify", a.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	if _, r := d.refresh(t, http.MethodPost, b.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("refresh on a full store: %d %s", r.StatusCode, r.body)
	}
	d.verifier.do(http.MethodPost, "/auth/logout/all", c.Token).expect(t, http.StatusOK, verifiedUser)
	d.verifier.do(http.MethodGet, "/auth/verify", c.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	d.issuer.doBody(http.MethodPost, "/auth/token", d.login, userBody).expect(t, http.StatusServiceUnavailable, errorBody("session store full: new logins are refused until Redis has memory again"))
}

// fillRedis writes a large value and then sets srv's maxmemory below what Redis uses
// (noeviction, as the managed Redis runs): every command that may grow memory is
// refused from then on.
func fillRedis(t *testing.T, srv *redistest.Server) {
	t.Helper()
	if _, err := redistest.Command(srv.Addr, "SET", "filler", strings.Repeat("x", 256<<10)); err != nil {
		t.Fatalf("writing the filler: %v", err)
	}
	info, err := redistest.Command(srv.Addr, "INFO", "memory")
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.Atoi(v)
		}
	}
	if used == 0 {
		t.Fatalf("no used_memory in INFO memory:\n%s", info)
	}
	for _, args := range [][]string{
		{"CONFIG", "SET", "maxmemory-policy", "noeviction"},
		{"CONFIG", "SET", "maxmemory", strconv.Itoa(used - 128<<10)},
	} {
		if _, err := redistest.Command(srv.Addr, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if _, err := redistest.Command(srv.Addr, "SET", "probe", "x"); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("a write after filling Redis: %v, want OOM", err)
	}
}

// TestSessions_OneClockForCutoffsAndIssuedAt runs the issuer with a clock off the
// verifier's (and Redis'): a session refreshed on it just before a logout everywhere,
// sent with a token of another issuer whose clock is right, still ends with it, and a
// login right after works.
func TestSessions_OneClockForCutoffsAndIssuedAt(t *testing.T) {
	for _, skew := range []time.Duration{20 * time.Second, -20 * time.Second} {
		t.Run("issuer clock off by "+skew.String(), func(t *testing.T) {
			skewed := func() time.Time { return time.Now().Add(skew) }
			d := newDeploymentWith(t, nil, nil, []harnessOption{
				asIssuer(nil, false),
				withConfig(func(c *roles.Config) { c.Now = skewed }),
			})
			laptop := d.issue(t)
			phoneClaims := tokentest.Claims(15 * time.Minute)
			phoneClaims.User.ID = "u-42"
			phone := d.verifier.signClaims(t, phoneClaims)
			refreshed, r := d.refresh(t, http.MethodPost, laptop.RefreshToken)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
			}
			d.verifier.do(http.MethodPost, "/auth/logout/all", phone).expect(t, http.StatusOK, verifiedUser)
			d.verifier.do(http.MethodGet, "/auth/verify", refreshed.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			_, r = d.refresh(t, http.MethodPost, refreshed.RefreshToken)
			r.expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			again := d.issue(t)
			if r := d.verifier.do(http.MethodGet, "/auth/verify", again.Token); r.StatusCode != http.StatusOK {
				t.Fatalf("a login right after the logout everywhere: %d %s", r.StatusCode, r.body)
			}
		})
	}
}

// TestIssue_ALoginRightAfterADetectedDataLossWorks empties the store: once a server
// has detected the loss, tokens issued before it are refused, and a login at once
// after it verifies, whether the issuer detected the loss itself or not yet.
func TestIssue_ALoginRightAfterADetectedDataLossWorks(t *testing.T) {
	for _, issuerDetected := range []bool{true, false} {
		t.Run("issuer detected the loss: "+strconv.FormatBool(issuerDetected), func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			d := newDeployment(t, false, srv)
			ctx := context.Background()
			for _, h := range []*harness{d.verifier, d.issuer} {
				if _, err := h.bl.CheckGeneration(ctx); err != nil {
					t.Fatal(err)
				}
			}
			before := d.issue(t)
			if _, err := redistest.Command(srv.Addr, "FLUSHALL"); err != nil {
				t.Fatal(err)
			}
			detectors := []*harness{d.verifier}
			if issuerDetected {
				detectors = append(detectors, d.issuer)
			}
			for _, h := range detectors {
				if ev, err := h.bl.CheckGeneration(ctx); err != nil || !ev.Lost {
					t.Fatalf("generation check after FLUSHALL: %+v, %v; want a loss", ev, err)
				}
			}
			d.verifier.do(http.MethodGet, "/auth/verify", before.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			after := d.issue(t)
			if r := d.verifier.do(http.MethodGet, "/auth/verify", after.Token); r.StatusCode != http.StatusOK {
				t.Fatalf("a login right after the detection: %d %s", r.StatusCode, r.body)
			}
			if _, r := d.refresh(t, http.MethodPost, after.RefreshToken); r.StatusCode != http.StatusCreated {
				t.Fatalf("its refresh: %d %s", r.StatusCode, r.body)
			}
		})
	}
}

// TestSessions_RevocationsOutliveTokensWhateverTheWritersLifetime: the verifier that
// logs out runs with a shorter --refresh-lifetime than the issuer that signed (a
// rollout that raised it): the stamp's entry and the user's cutoff still live until
// the session's refresh token has expired, plus the leeway cap and skew margin.
func TestSessions_RevocationsOutliveTokensWhateverTheWritersLifetime(t *testing.T) {
	const issuerLifetime = 1440 * time.Hour
	d := newDeploymentWith(t, nil,
		[]harnessOption{withConfig(func(c *roles.Config) { c.Lifetimes.Refresh = 720 * time.Hour })},
		[]harnessOption{asIssuer(nil, false), withConfig(func(c *roles.Config) { c.Lifetimes.Refresh = issuerLifetime })},
	)
	ctx := context.Background()
	margin := token.MaxLeeway + sessions.ClockSkewMargin
	expiry := func(key string) time.Time {
		t.Helper()
		ms, err := d.verifier.rdb.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(ms.Milliseconds())
	}
	s := d.issue(t)
	refreshExp := claimsOf(t, s.RefreshToken).ExpiresAt.Time
	d.verifier.do(http.MethodPost, "/auth/logout", s.Token).expect(t, http.StatusOK, verifiedUser)
	stamp := onlyKey(t, d.verifier, "*:stamp:*")
	if got := expiry(stamp); got.Before(refreshExp.Add(margin)) {
		t.Errorf("the stamp's entry expires at %v, before its refresh token (%v) plus margins", got, refreshExp)
	}

	other := d.issue(t)
	refreshExp = claimsOf(t, other.RefreshToken).ExpiresAt.Time
	d.verifier.do(http.MethodPost, "/auth/logout/all", other.Token).expect(t, http.StatusOK, verifiedUser)
	cutoff := onlyKey(t, d.verifier, "*:cutoff")
	if got := expiry(cutoff); got.Before(refreshExp.Add(margin)) {
		t.Errorf("the user's cutoff expires at %v, before the session's refresh token (%v) plus margins", got, refreshExp)
	}
}

// TestIssue_SingleSessionLoginBurstDoesNotLockTheUserOut logs one user in 40 times in
// a row with --single-session: each login ends the earlier ones, and the login after
// the burst verifies at once (the cutoff is not pushed into the future).
func TestIssue_SingleSessionLoginBurstDoesNotLockTheUserOut(t *testing.T) {
	d := newDeployment(t, true, nil)
	var burst []login
	for range 40 {
		burst = append(burst, d.issue(t))
	}
	last := d.issue(t)
	if r := d.verifier.do(http.MethodGet, "/auth/verify", last.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("the login after a burst of 40: %d %s", r.StatusCode, r.body)
	}
	if iat := claimsOf(t, last.Token).IssuedAt.Time; iat.After(time.Now().Add(2 * time.Second)) {
		t.Errorf("the login after the burst was issued at %v, in the future", iat)
	}
	for _, s := range burst {
		d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	}
	if _, r := d.refresh(t, http.MethodPost, last.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("refresh of the latest session: %d %s", r.StatusCode, r.body)
	}
}

// stampOf is the session stamp (user.auth.token) of a token.
func stampOf(t *testing.T, raw string) string {
	t.Helper()
	return claimsOf(t, raw).User.Auth.Token
}

// TestRefresh_ARetryWithinTheGracePeriodKeepsTheUserLoggedIn presents a refresh token
// a second time right after its refresh, as a client that lost the answer does: within
// the grace period it gets a pair of the same new stamp, and both pairs work; once the
// new refresh token has been used, the old one is reuse again and ends the session.
// Without a grace period the retry is reuse at once.
func TestRefresh_ARetryWithinTheGracePeriodKeepsTheUserLoggedIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{
		{"grace period 30s", 30 * time.Second},
		{"no grace period", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeploymentWith(t, nil, nil, []harnessOption{asIssuer(nil, false), withConfig(func(c *roles.Config) { c.RefreshGrace = tc.grace })})
			s := d.issue(t)
			first, r := d.refresh(t, http.MethodPost, s.RefreshToken)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
			}
			retry, r := d.refresh(t, http.MethodPost, s.RefreshToken)
			if tc.grace == 0 {
				r.expect(t, http.StatusUnauthorized, errorBody("refresh token reused: session revoked"))
				d.verifier.do(http.MethodGet, "/auth/verify", first.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
				return
			}
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("the retry within the grace period: %d %s", r.StatusCode, r.body)
			}
			if stampOf(t, retry.Token) != stampOf(t, first.Token) || stampOf(t, retry.RefreshToken) != stampOf(t, first.RefreshToken) {
				t.Fatal("the retry's pair has another stamp than the first answer's")
			}
			for _, tok := range []string{first.Token, retry.Token} {
				if r := d.verifier.do(http.MethodGet, "/auth/verify", tok); r.StatusCode != http.StatusOK {
					t.Fatalf("verify of a pair of the new stamp: %d %s", r.StatusCode, r.body)
				}
			}
			d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			next, r := d.refresh(t, http.MethodPost, first.RefreshToken)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("refresh of the new refresh token: %d %s", r.StatusCode, r.body)
			}
			_, r = d.refresh(t, http.MethodPost, s.RefreshToken)
			r.expect(t, http.StatusUnauthorized, errorBody("refresh token reused: session revoked"))
			d.verifier.do(http.MethodGet, "/auth/verify", next.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
		})
	}
}

// TestRefresh_ARotationRedisMadeIsNeverAnswered503 runs the issuer against a store that
// wants a replica's acknowledgement from a Redis that has no replica: the rotation is
// made on the primary, so the refresh is answered 201 (a 503 would make the client's
// retry look like reuse), and the session refreshes on.
func TestRefresh_ARotationRedisMadeIsNeverAnswered503(t *testing.T) {
	d := newDeploymentWith(t, nil, nil, []harnessOption{
		asIssuer(nil, false),
		withRedis(blacklist.ClientConfig{Addrs: []string{sharedRedis(t).Addr}}, blacklist.ReplicaAcks{Min: 1, Timeout: 50 * time.Millisecond}),
	})
	s := d.issue(t)
	next, r := d.refresh(t, http.MethodPost, s.RefreshToken)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("refresh with no replica to acknowledge it: %d %s, want 201", r.StatusCode, r.body)
	}
	if _, r = d.refresh(t, http.MethodPost, next.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("the next refresh: %d %s", r.StatusCode, r.body)
	}
	if n := counterOf(t, d.issuer, "authserver_blacklist_operations_total", "op", "rotate", "result", "replicas_behind"); n != 2 {
		t.Errorf("rotations counted replicas_behind: %v, want 2", n)
	}
}

// counterOf reads one series of a counter vector from h's registry.
func counterOf(t *testing.T, h *harness, name string, labels ...string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestRefresh_RateLimitedPerSession allows three refreshes a minute: the fourth of one
// session answers 429 with Retry-After, while another session refreshes on.
func TestRefresh_RateLimitedPerSession(t *testing.T) {
	d := newDeploymentWith(t, nil, nil, []harnessOption{asIssuer(nil, false), withConfig(func(c *roles.Config) { c.RefreshesPerMinute = 3 })})
	s, other := d.issue(t), d.issue(t)
	next := s
	for i := range 3 {
		var r response
		if next, r = d.refresh(t, http.MethodPost, next.RefreshToken); r.StatusCode != http.StatusCreated {
			t.Fatalf("refresh %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
	_, r := d.refresh(t, http.MethodPost, next.RefreshToken)
	r.expect(t, http.StatusTooManyRequests, errorBody("too many refreshes of this session: retry later"))
	if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 1 || after > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", r.Header.Get("Retry-After"))
	}
	if r := d.verifier.do(http.MethodGet, "/auth/verify", next.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("the limited session's pair: %d %s", r.StatusCode, r.body)
	}
	if _, r := d.refresh(t, http.MethodPost, other.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("another session: %d %s", r.StatusCode, r.body)
	}
}

// TestRefresh_SessionEndsAtItsMaximumLifetime gives sessions 2 seconds: no token of
// the session expires after it, refreshes work until then and are refused from then
// on, however recently the session was refreshed; a new login works.
func TestRefresh_SessionEndsAtItsMaximumLifetime(t *testing.T) {
	const max = 2 * time.Second
	d := newDeploymentWith(t, nil, nil, []harnessOption{asIssuer(nil, false), withConfig(func(c *roles.Config) { c.SessionMaxLifetime = max })})
	s := d.issue(t)
	start := claimsOf(t, s.Token).IssuedAt.Time
	for _, tok := range []string{s.Token, s.RefreshToken} {
		if exp := claimsOf(t, tok).ExpiresAt.Time; exp.After(start.Add(max)) {
			t.Fatalf("a token of the session expires at %v, after the session's end %v", exp, start.Add(max))
		}
	}
	next, r := d.refresh(t, http.MethodPost, s.RefreshToken)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("refresh within the session's lifetime: %d %s", r.StatusCode, r.body)
	}
	if exp := claimsOf(t, next.RefreshToken).ExpiresAt.Time; exp.After(start.Add(max)) {
		t.Fatalf("the refreshed refresh token expires at %v, after the session's end %v", exp, start.Add(max))
	}
	time.Sleep(time.Until(start.Add(max + time.Second)))
	_, r = d.refresh(t, http.MethodPost, next.RefreshToken)
	r.expect(t, http.StatusUnauthorized, errorBody("invalid or expired jwt, internal=session reached its maximum lifetime"))
	again := d.issue(t)
	if _, r := d.refresh(t, http.MethodPost, again.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("a new login's refresh: %d %s", r.StatusCode, r.body)
	}
}
