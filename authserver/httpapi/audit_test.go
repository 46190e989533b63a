package httpapi_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/token"
)

// auditLines are the audit records in a JSON log, each as its fields.
func auditLines(t *testing.T, out string) []map[string]string {
	t.Helper()
	var lines []map[string]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] != audit.Message {
			continue
		}
		fields := map[string]string{}
		for k, v := range rec {
			if k != "time" {
				fields[k], _ = v.(string)
			}
		}
		lines = append(lines, fields)
	}
	return lines
}

// TestAudit_OneLinePerSessionEventWithoutTokens issues, refreshes, logs out and logs
// out everywhere through the API and reads the servers' log: one audit line per
// event with the user, session, kid and, for an issuance, the caller ServiceAccount;
// no token, part of a token or session stamp anywhere in the log.
func TestAudit_OneLinePerSessionEventWithoutTokens(t *testing.T) {
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kc, _ := kube(t)
	clients := clientauth.New(clientauth.Config{
		Reviews:  kc.AuthenticationV1().TokenReviews(),
		Audience: clientAudience,
		Clients:  []clientauth.ServiceAccount{{Namespace: "login", Name: "login-service"}},
	})
	verifier := newHarness(t, nil, withLogger(log))
	d := deployment{
		verifier: verifier,
		issuer:   newReplica(verifier, asIssuer(clients, false), withLogger(log)),
		login:    serviceAccountToken(t, kc, "login", "login-service", clientAudience),
	}
	kid := signingKid(t, d)

	first := d.issue(t)
	second, r := d.refresh(t, http.MethodPost, first.RefreshToken)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	d.verifier.do(http.MethodPost, "/auth/logout", second.Token).expect(t, http.StatusOK, verifiedUser)
	other := d.issue(t)
	d.verifier.do(http.MethodPost, "/auth/logout/all", other.Token).expect(t, http.StatusOK, verifiedUser)
	// A refused logout is not an event.
	d.verifier.do(http.MethodPost, "/auth/logout", second.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))

	session := func(tok string) string {
		var c token.Claims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			t.Fatal(err)
		}
		return c.User.Auth.ID
	}
	s1, s2 := session(first.Token), session(other.Token)
	want := []map[string]string{
		{"level": "INFO", "msg": "audit", "event": "issue", "user_id": "u-42", "session_id": s1, "kid": kid, "caller": "login/login-service"},
		{"level": "INFO", "msg": "audit", "event": "refresh", "user_id": "u-42", "session_id": s1, "kid": kid},
		{"level": "INFO", "msg": "audit", "event": "logout", "user_id": "u-42", "session_id": s1, "kid": kid},
		{"level": "INFO", "msg": "audit", "event": "issue", "user_id": "u-42", "session_id": s2, "kid": kid, "caller": "login/login-service"},
		{"level": "INFO", "msg": "audit", "event": "logout-all", "user_id": "u-42", "session_id": s2, "kid": kid},
	}
	out := sink.String()
	got := auditLines(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Errorf("audit line %d = %v, want %v", i, got[i], want[i])
			continue
		}
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("audit line %d: %s = %q, want %q (line %v)", i, k, got[i][k], v, got[i])
			}
		}
	}
	for _, tok := range []string{first.Token, first.RefreshToken, second.Token, second.RefreshToken, other.Token, other.RefreshToken, d.login} {
		var c token.Claims
		_, _, _ = jwt.NewParser().ParseUnverified(tok, &c)
		secrets := append(strings.Split(tok, "."), tok)
		if c.User.Auth.Token != "" {
			secrets = append(secrets, c.User.Auth.Token)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the log holds a token, part of one or a session stamp: %q", s)
			}
		}
	}
}

// signingKid is the kid the issuer signs with.
func signingKid(t *testing.T, d deployment) string {
	t.Helper()
	set := d.issuer.keys.Current()
	k, ok := set.Signer()
	if !ok {
		t.Fatal("the issuer has no signing key")
	}
	return k.ID
}

// TestAudit_ReuseAndRefusedIssuanceAtEveryLogLevel logs at warn and at error level,
// as --log-level warn runs: the audit lines are still written (audit is not a log
// level), for a refresh, a refresh token presented again (refresh-reuse, with its
// session, counted) and issuances refused for an unknown caller, a caller not
// listed and no token at all (issue-refused); no token reaches the log.
func TestAudit_ReuseAndRefusedIssuanceAtEveryLogLevel(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			var sink syncBuffer
			log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: level}))
			d := newDeploymentWith(t, nil, nil, []harnessOption{asIssuer(nil, false), withLogger(log)})
			kc, _ := kube(t)
			s := d.issue(t)
			next, r := d.refresh(t, http.MethodPost, s.RefreshToken)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
			}
			_, r = d.refresh(t, http.MethodPost, s.RefreshToken)
			r.expect(t, http.StatusUnauthorized, errorBody("refresh token reused: session revoked"))
			intruder := serviceAccountToken(t, kc, "login", "intruder", clientAudience)
			d.issuer.doBody(http.MethodPost, "/auth/token", intruder, userBody).expect(t, http.StatusForbidden, errorBody("caller may not obtain tokens"))
			d.issuer.doBody(http.MethodPost, "/auth/token", "not-a-token", userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))
			d.issuer.doBody(http.MethodPost, "/auth/token", "", userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))

			session := claimsOf(t, s.Token).User.Auth.ID
			kid := signingKid(t, d)
			want := []map[string]string{
				{"event": "issue", "user_id": "u-42", "session_id": session, "kid": kid, "caller": "login/login-service"},
				{"event": "refresh", "user_id": "u-42", "session_id": session, "kid": kid},
				{"event": "refresh-reuse", "user_id": "u-42", "session_id": session, "kid": kid},
				{"event": "issue-refused", "caller": "login/intruder", "reason": "forbidden"},
				{"event": "issue-refused", "reason": "unauthenticated"},
				{"event": "issue-refused", "reason": "unauthenticated"},
			}
			out := sink.String()
			got := auditLines(t, out)
			if len(got) != len(want) {
				t.Fatalf("%d audit lines, want %d:\n%s", len(got), len(want), out)
			}
			for i, w := range want {
				w["level"], w["msg"] = "INFO", "audit"
				if len(got[i]) != len(w) {
					t.Errorf("audit line %d = %v, want %v", i, got[i], w)
					continue
				}
				for k, v := range w {
					if got[i][k] != v {
						t.Errorf("audit line %d: %s = %q, want %q", i, k, got[i][k], v)
					}
				}
			}
			for _, tok := range []string{s.Token, s.RefreshToken, next.Token, next.RefreshToken, intruder, d.login} {
				for _, part := range append(strings.Split(tok, "."), stampOf(t, s.Token)) {
					if strings.Contains(out, part) {
						t.Errorf("the log holds a token, part of one or a session stamp: %q", part)
					}
				}
			}
			if n := counterOf(t, d.issuer, "authserver_blacklist_operations_total", "op", "rotate", "result", "reuse"); n != 1 {
				t.Errorf("reuse counted %v times, want 1", n)
			}
		})
	}
}
