package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// clientAudience is the audience the issuer's callers request their tokens for.
const clientAudience = "http://auth-issuer.test.svc"

// deployment is an issuer and a verifier of one AuthService (the same keys, Redis
// and prefix), with a login service's ServiceAccount token allowed to call the issuer
// (issuance, revocation) and a gateway's allowed to call the verifier's introspection.
type deployment struct {
	issuer, verifier *harness
	login, gateway   string
	// desk is a second issuance client's token (login/support-desk).
	desk string
}

func newDeployment(t testing.TB, singleSession bool, redis *redistest.Server, opts ...harnessOption) deployment {
	t.Helper()
	return newDeploymentWith(t, redis, opts, []harnessOption{asIssuer(nil, singleSession)})
}

// newDeploymentWith is newDeployment with options of its own for the verifier and for
// the issuer; asIssuer among issuerOpts sets single-session mode (its clients are
// replaced by the login service's).
func newDeploymentWith(t testing.TB, redis *redistest.Server, verifierOpts, issuerOpts []harnessOption) deployment {
	t.Helper()
	kc, _ := kube(t)
	clusterKeys := &clientauth.ClusterKeys{Client: kc.Discovery().RESTClient()}
	clients := clientauth.New(clientauth.Config{
		Reviews:  kc.AuthenticationV1().TokenReviews(),
		Audience: clientAudience,
		Clients:  []clientauth.ServiceAccount{{Namespace: "login", Name: "login-service"}, {Namespace: "login", Name: "support-desk"}},
		Keys:     clusterKeys,
	})
	introspectors := clientauth.New(clientauth.Config{
		Reviews:  kc.AuthenticationV1().TokenReviews(),
		Audience: clientAudience,
		Clients:  []clientauth.ServiceAccount{{Namespace: "edge", Name: "gateway"}},
		Keys:     clusterKeys,
	})
	verifier := newHarness(t, redis, append([]harnessOption{onRedis, withIntrospection(introspectors)}, verifierOpts...)...)
	issuer := newReplica(verifier, append(issuerOpts, func(c *harnessConfig) { c.issuer, c.cfg.Clients = true, clients })...)
	return deployment{
		issuer: issuer, verifier: verifier,
		login:   serviceAccountToken(t, kc, "login", "login-service", clientAudience),
		gateway: serviceAccountToken(t, kc, "edge", "gateway", clientAudience),
		desk:    serviceAccountToken(t, kc, "login", "support-desk", clientAudience),
	}
}

// doBody sends one request with a body.
func (h *harness) doBody(method, path, bearer, body string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Response: resp, body: string(b)}
}

// login is the payload of a successful issuance.
type login struct {
	ID              string  `json:"id"`
	Email           string  `json:"email"`
	Name            string  `json:"name"`
	EmailVerifiedAt *string `json:"email_verified_at"`
	Token           string  `json:"token"`
	TokenExpiration int64   `json:"token_expiration"`
	RefreshToken    string  `json:"refresh_token"`
}

const userBody = `{"id":"u-42","email":"ada@example.com","name":"Ada","email_verified_at":null,"created_at":"2021-11-02T09:47:21+01:00","updated_at":"2021-11-02T09:47:21+01:00"}`

// issue obtains a session for userBody's user through the API.
func (d deployment) issue(t testing.TB) login {
	t.Helper()
	r := d.issuer.doBody(http.MethodPost, "/auth/token", d.login, userBody)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("POST /auth/token: %d %s", r.StatusCode, r.body)
	}
	var env struct {
		Success bool  `json:"success"`
		Payload login `json:"payload"`
	}
	if err := json.Unmarshal([]byte(r.body), &env); err != nil || !env.Success {
		t.Fatalf("POST /auth/token body %s: %v", r.body, err)
	}
	return env.Payload
}

// refresh exchanges a refresh token; the pair on 201, else the response.
func (d deployment) refresh(t *testing.T, method, refreshToken string) (login, response) {
	t.Helper()
	r := d.issuer.do(method, "/auth/refresh", refreshToken)
	var env struct {
		Payload login `json:"payload"`
	}
	if r.StatusCode == http.StatusCreated {
		if err := json.Unmarshal([]byte(r.body), &env); err != nil {
			t.Fatal(err)
		}
	}
	return env.Payload, r
}

const verifiedUser = `{"success":true,"message":"Success","payload":{"id":"u-42"}}`

// TestIssue_AllowedDeniedUnauthenticated calls POST /auth/token as the allowed
// ServiceAccount, as another ServiceAccount, with a token for another audience, with
// no token and with bad bodies.
func TestIssue_AllowedDeniedUnauthenticated(t *testing.T) {
	d := newDeployment(t, false, nil)
	kc, _ := kube(t)
	got := d.issue(t)
	if got.ID != "u-42" || got.Email != "ada@example.com" || got.Name != "Ada" || got.EmailVerifiedAt != nil || got.Token == "" || got.RefreshToken == "" {
		t.Fatalf("login payload = %+v", got)
	}
	if exp := time.Unix(got.TokenExpiration, 0); exp.Before(time.Now().Add(14*time.Minute)) || exp.After(time.Now().Add(16*time.Minute)) {
		t.Errorf("token_expiration = %v, want about 15 minutes from now", exp)
	}
	var claims token.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(got.Token, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["typ"] != "at+jwt" || claims.Issuer != testIssuer || claims.User.Auth.ID == "" || len(claims.User.Auth.Token) != 64 || claims.ID == "" {
		t.Errorf("access token header %v, claims %+v: want typ at+jwt, iss, a session, a stamp and a jti", tok.Header, claims)
	}
	if claims.Subject != "u-42" || claims.ClientID != "system:serviceaccount:login:login-service" || claims.SessionID != claims.User.Auth.ID || claims.IssuedAt == nil {
		t.Errorf("RFC 9068 claims sub %q, client_id %q, sid %q (session %q), iat %v: want the user, the caller, its session", claims.Subject, claims.ClientID, claims.SessionID, claims.User.Auth.ID, claims.IssuedAt)
	}
	r := d.verifier.do(http.MethodGet, "/auth/verify", got.Token)
	if r.StatusCode != http.StatusOK || r.Header.Get("X-Auth-User-Id") != "u-42" {
		t.Fatalf("verify of an issued token: %d %s", r.StatusCode, r.body)
	}

	intruder := serviceAccountToken(t, kc, "login", "intruder", clientAudience)
	d.issuer.doBody(http.MethodPost, "/auth/token", intruder, userBody).expect(t, http.StatusForbidden, errorBody("caller may not obtain tokens"))
	otherAudience := serviceAccountToken(t, kc, "login", "login-service", "https://kubernetes.default.svc")
	d.issuer.doBody(http.MethodPost, "/auth/token", otherAudience, userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))
	d.issuer.doBody(http.MethodPost, "/auth/token", "not-a-token", userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))
	d.issuer.doBody(http.MethodPost, "/auth/token", "", userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))
	d.issuer.doBody(http.MethodPost, "/auth/token", got.Token, userBody).expect(t, http.StatusUnauthorized, errorBody("caller not authenticated"))

	for _, tc := range []struct{ body, msg string }{
		{``, `invalid body: a JSON object with the user is required (field \"id\" at least)`},
		{`{"email":"a@b"}`, `invalid body: field \"id\" is required`},
		{`{"id":42}`, `invalid body: field \"id\" must be a string`},
		{`{"id":"u","auth":{"id":"s","token":"t"}}`, `invalid body: unknown field \"auth\" (the session is made by the issuer)`},
		{`{"id":"` + strings.Repeat("x", 600) + `"}`, `invalid body: field \"id\" is longer than 512 bytes`},
	} {
		d.issuer.doBody(http.MethodPost, "/auth/token", d.login, tc.body).expect(t, http.StatusBadRequest, errorBody(tc.msg))
	}
	d.issuer.do(http.MethodGet, "/auth/token", d.login).expect(t, http.StatusMethodNotAllowed, errorBody("Method Not Allowed"))
	d.verifier.doBody(http.MethodPost, "/auth/token", d.login, userBody).expect(t, http.StatusNotFound, errorBody("Not Found"))
	d.issuer.do(http.MethodPost, "/auth/logout", got.Token).expect(t, http.StatusNotFound, errorBody("Not Found"))
}

// TestRefresh_RotatesAndReuseRevokesTheSession: a refresh answers 201 with a new pair
// under a new stamp and revokes the old stamp (its access token too); presenting the
// rotated refresh token again revokes the whole session.
func TestRefresh_RotatesAndReuseRevokesTheSession(t *testing.T) {
	refreshFlow(t, newDeployment(t, false, nil))
}

func refreshFlow(t *testing.T, d deployment) {
	first := d.issue(t)
	second, r := d.refresh(t, http.MethodGet, first.RefreshToken)
	if r.StatusCode != http.StatusCreated || second.Token == "" || second.RefreshToken == "" || second.TokenExpiration == 0 {
		t.Fatalf("GET /auth/refresh: %d %s", r.StatusCode, r.body)
	}
	var a, b token.Claims
	_, _, _ = jwt.NewParser().ParseUnverified(first.Token, &a)
	_, _, _ = jwt.NewParser().ParseUnverified(second.Token, &b)
	if a.User.Auth.ID != b.User.Auth.ID || a.User.Auth.Token == b.User.Auth.Token {
		t.Fatalf("refresh kept session %q→%q and stamp %q→%q; want the same session, a new stamp", a.User.Auth.ID, b.User.Auth.ID, a.User.Auth.Token, b.User.Auth.Token)
	}
	if b.ClientID != a.ClientID || b.Subject != a.Subject || b.SessionID != a.SessionID || b.ClientID == "" {
		t.Errorf("refresh changed client_id %q→%q, sub %q→%q, sid %q→%q; want them kept", a.ClientID, b.ClientID, a.Subject, b.Subject, a.SessionID, b.SessionID)
	}
	d.verifier.do(http.MethodGet, "/auth/verify", first.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	if r := d.verifier.do(http.MethodGet, "/auth/verify", second.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("verify of the refreshed token: %d %s", r.StatusCode, r.body)
	}
	third, r := d.refresh(t, http.MethodPost, second.RefreshToken)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /auth/refresh: %d %s", r.StatusCode, r.body)
	}
	_, r = d.refresh(t, http.MethodGet, second.RefreshToken)
	r.expect(t, http.StatusUnauthorized, errorBody("refresh token reused: session revoked"))
	_, r = d.refresh(t, http.MethodGet, third.RefreshToken)
	r.expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	d.verifier.do(http.MethodGet, "/auth/verify", third.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))

	other := d.issue(t)
	_, r = d.refresh(t, http.MethodGet, other.Token)
	r.expect(t, http.StatusUnauthorized, errorBody("invalid or expired jwt, internal=token is not a refresh token"))
	if r := d.verifier.do(http.MethodGet, "/auth/verify", other.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("another session after a reuse: %d %s", r.StatusCode, r.body)
	}
}

// TestLogout_KillsTheRefreshTokenAndEveryAccessTokenOfItsStamp logs out an issued
// access token: its refresh token no longer refreshes, and a refresh token is refused
// by verify and logout.
func TestLogout_KillsTheRefreshTokenAndEveryAccessTokenOfItsStamp(t *testing.T) {
	logoutFlow(t, newDeployment(t, false, nil))
}

func logoutFlow(t *testing.T, d deployment) {
	s := d.issue(t)
	refreshAsAccess := errorBody("invalid or expired jwt, internal=token is a refresh token, not an access token")
	d.verifier.do(http.MethodGet, "/auth/verify", s.RefreshToken).expect(t, http.StatusUnauthorized, refreshAsAccess)
	d.verifier.do(http.MethodPost, "/auth/logout", s.RefreshToken).expect(t, http.StatusUnauthorized, refreshAsAccess)
	d.verifier.do(http.MethodPost, "/auth/logout", s.Token).expect(t, http.StatusOK, verifiedUser)
	d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	_, r := d.refresh(t, http.MethodGet, s.RefreshToken)
	r.expect(t, http.StatusUnauthorized, errorBody("refresh token reused: session revoked"))
}

// TestLogoutAll_EndsEverySessionOfTheUser: two sessions (two devices) end with one
// logout everywhere, refresh tokens included; a login right after works.
func TestLogoutAll_EndsEverySessionOfTheUser(t *testing.T) {
	logoutAllFlow(t, newDeployment(t, false, nil))
}

func logoutAllFlow(t *testing.T, d deployment) {
	phone, laptop := d.issue(t), d.issue(t)
	d.verifier.do(http.MethodPost, "/auth/logout/all", phone.Token).expect(t, http.StatusOK, verifiedUser)
	for _, s := range []login{phone, laptop} {
		d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
		_, r := d.refresh(t, http.MethodGet, s.RefreshToken)
		r.expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	}
	again := d.issue(t)
	if r := d.verifier.do(http.MethodGet, "/auth/verify", again.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("a login right after logging out everywhere: %d %s", r.StatusCode, r.body)
	}
	if _, r := d.refresh(t, http.MethodGet, again.RefreshToken); r.StatusCode != http.StatusCreated {
		t.Fatalf("its refresh: %d %s", r.StatusCode, r.body)
	}
}

// TestIssue_SingleSessionEndsTheEarlierSessions: with --single-session a new login
// ends the user's earlier ones, as the original's one session per user did.
func TestIssue_SingleSessionEndsTheEarlierSessions(t *testing.T) {
	singleFlow(t, newDeployment(t, true, nil))
}

func singleFlow(t *testing.T, d deployment) {
	first := d.issue(t)
	second := d.issue(t)
	d.verifier.do(http.MethodGet, "/auth/verify", first.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	_, r := d.refresh(t, http.MethodGet, first.RefreshToken)
	r.expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	if r := d.verifier.do(http.MethodGet, "/auth/verify", second.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("the latest session: %d %s", r.StatusCode, r.body)
	}
}
