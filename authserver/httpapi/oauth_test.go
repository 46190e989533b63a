package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// doForm posts form (when not nil) as application/x-www-form-urlencoded, or body with
// contentType, with bearer as the caller's token.
func (h *harness) doForm(path, bearer string, form url.Values) response {
	h.t.Helper()
	return h.doRaw(http.MethodPost, path, bearer, "application/x-www-form-urlencoded", form.Encode())
}

func (h *harness) doRaw(method, path, bearer, contentType, body string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
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

// introspect asks d's verifier about tok as the gateway.
func (d deployment) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	r := d.verifier.doForm("/auth/introspect", d.gateway, url.Values{"token": {tok}})
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("introspection: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const inactiveBody = `{"active":false}`

// TestIntrospect_ActiveOnlyWhereVerifyWouldAccept: an issued access token is active with
// its RFC 7662 fields; a seed-format token is active with sub and exp; a logged-out, a
// session-revoked, an expired, a foreign-key and a refresh token are {"active":false},
// and nothing else is said about them.
func TestIntrospect_ActiveOnlyWhereVerifyWouldAccept(t *testing.T) {
	d := newDeployment(t, false, nil)
	s := d.issue(t)
	var claims token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(s.Token, &claims); err != nil {
		t.Fatal(err)
	}
	got := d.introspect(t, s.Token)
	want := map[string]any{
		"active": true, "token_type": "Bearer", "sub": "u-42", "client_id": "system:serviceaccount:login:login-service",
		"sid": claims.User.Auth.ID, "email": "ada@example.com", "iss": testIssuer, "jti": claims.ID,
		"exp": float64(claims.ExpiresAt.Unix()), "iat": float64(claims.IssuedAt.Unix()),
	}
	if len(got) != len(want) {
		t.Errorf("introspection of an issued token = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("introspection %s = %v, want %v", k, got[k], v)
		}
	}
	seed := tokentest.IssueSeedShaped(t, d.verifier.set, time.Minute)
	if got := d.introspect(t, seed); got["active"] != true || got["sub"] != tokentest.SeedUser.ID || got["sid"] != tokentest.SeedUser.Auth.ID || got["client_id"] != nil {
		t.Errorf("introspection of a seed-format token = %v", got)
	}

	loggedOut := d.issue(t)
	d.verifier.do(http.MethodPost, "/auth/logout", loggedOut.Token).expect(t, http.StatusOK, verifiedUser)
	revokedSession := d.issue(t)
	d.issuer.doForm("/auth/revoke", d.login, url.Values{"token": {revokedSession.RefreshToken}}).expect(t, http.StatusOK, "")
	expired := tokentest.Claims(time.Minute)
	expired.IssuedAt, expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
	for name, tok := range map[string]string{
		"logged out":                   loggedOut.Token,
		"session revoked":              revokedSession.Token,
		"expired":                      d.verifier.signClaims(t, expired),
		"signed by a foreign key":      tokentest.Sign(t, tokentest.ForeignKey(t), "", tokentest.Claims(time.Minute)),
		"another service's seed token": tokentest.SeedForeignToken,
		"refresh token":                s.RefreshToken,
		"not a token":                  "garbage",
	} {
		r := d.verifier.doForm("/auth/introspect", d.gateway, url.Values{"token": {tok}})
		if r.StatusCode != http.StatusOK || r.body != inactiveBody {
			t.Errorf("%s: %d %s, want 200 %s", name, r.StatusCode, r.body, inactiveBody)
		}
	}
}

// TestIntrospect_SharesVerifysCacheAndRevocations: introspection reads the verified-token
// cache that forward auth fills (a hit, no signature check, no Redis), and a logout on
// another replica makes the cached token inactive there within the revocation bound.
func TestIntrospect_SharesVerifysCacheAndRevocations(t *testing.T) {
	d := newDeployment(t, false, nil, withCache(100))
	other := newReplica(d.verifier)
	s := d.issue(t)
	if r := d.verifier.do(http.MethodGet, "/auth/verify", s.Token); r.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d %s", r.StatusCode, r.body)
	}
	before := lookups(d.verifier, "hit")
	if got := d.introspect(t, s.Token); got["active"] != true {
		t.Fatalf("introspection = %v", got)
	}
	if after := lookups(d.verifier, "hit"); after == before {
		t.Fatalf("introspection after verify made no cache hit (hits %s → %s)", before, after)
	}
	other.do(http.MethodPost, "/auth/logout", s.Token).expect(t, http.StatusOK, verifiedUser)
	deadline := time.Now().Add(time.Second)
	for d.introspect(t, s.Token)["active"] != false {
		if time.Now().After(deadline) {
			t.Fatal("the token logged out on another replica is still active here after 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIntrospectAndRevoke_RefuseCallersAndBadBodies: no caller token or one the API server
// does not accept is 401 invalid_client with WWW-Authenticate; a ServiceAccount that is
// not listed is 403 unauthorized_client; a body that is not a form with exactly one
// token is 400 invalid_request; every answer is RFC 6749's error JSON.
func TestIntrospectAndRevoke_RefuseCallersAndBadBodies(t *testing.T) {
	d := newDeployment(t, false, nil)
	kc, _ := kube(t)
	s := d.issue(t)
	intruder := serviceAccountToken(t, kc, "edge", "intruder", clientAudience)
	wrongAudience := serviceAccountToken(t, kc, "edge", "gateway", "https://kubernetes.default.svc")
	form := url.Values{"token": {s.Token}}
	for _, ep := range []struct {
		h             *harness
		path, allowed string
		denied        string
	}{
		{d.verifier, "/auth/introspect", d.gateway, "caller may not introspect tokens"},
		{d.issuer, "/auth/revoke", d.login, "caller may not revoke tokens"},
	} {
		t.Run(ep.path, func(t *testing.T) {
			cases := []struct {
				name, bearer, contentType, body string
				status                          int
				want                            string
			}{
				{"no caller token", "", "application/x-www-form-urlencoded", form.Encode(), 401, `{"error":"invalid_client","error_description":"caller not authenticated"}`},
				{"not a token", "nope", "application/x-www-form-urlencoded", form.Encode(), 401, `{"error":"invalid_client","error_description":"caller not authenticated"}`},
				{"a token for another audience", wrongAudience, "application/x-www-form-urlencoded", form.Encode(), 401, `{"error":"invalid_client","error_description":"caller not authenticated"}`},
				{"a user's access token", s.Token, "application/x-www-form-urlencoded", form.Encode(), 401, `{"error":"invalid_client","error_description":"caller not authenticated"}`},
				{"a ServiceAccount not listed", intruder, "application/x-www-form-urlencoded", form.Encode(), 403, `{"error":"unauthorized_client","error_description":"` + ep.denied + `"}`},
				{"JSON body", ep.allowed, "application/json", `{"token":"x"}`, 400, `{"error":"invalid_request","error_description":"the body must be application/x-www-form-urlencoded"}`},
				{"no content type", ep.allowed, "", form.Encode(), 400, `{"error":"invalid_request","error_description":"the body must be application/x-www-form-urlencoded"}`},
				{"no token", ep.allowed, "application/x-www-form-urlencoded", "token_type_hint=access_token", 400, `{"error":"invalid_request","error_description":"parameter token is required"}`},
				{"empty token", ep.allowed, "application/x-www-form-urlencoded", "token=", 400, `{"error":"invalid_request","error_description":"parameter token is required"}`},
				{"two tokens", ep.allowed, "application/x-www-form-urlencoded", "token=a&token=b", 400, `{"error":"invalid_request","error_description":"parameter token is given more than once"}`},
				{"two hints", ep.allowed, "application/x-www-form-urlencoded", "token=a&token_type_hint=a&token_type_hint=b", 400, `{"error":"invalid_request","error_description":"parameter token_type_hint is given more than once"}`},
				{"bad escape", ep.allowed, "application/x-www-form-urlencoded", "token=%zz", 400, `{"error":"invalid_request","error_description":"the body is not application/x-www-form-urlencoded"}`},
			}
			for _, tc := range cases {
				r := ep.h.doRaw(http.MethodPost, ep.path, tc.bearer, tc.contentType, tc.body)
				if r.StatusCode != tc.status || r.body != tc.want || r.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: %d %s, want %d %s", tc.name, r.StatusCode, r.body, tc.status, tc.want)
				}
				if tc.status == 401 && r.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("%s: WWW-Authenticate %q", tc.name, r.Header.Get("WWW-Authenticate"))
				}
			}
			// The token in the query string is not read: it would end up in access logs.
			if r := ep.h.doRaw(http.MethodPost, ep.path+"?token="+s.Token, ep.allowed, "application/x-www-form-urlencoded", ""); r.StatusCode != http.StatusBadRequest {
				t.Errorf("token in the query: %d %s, want 400", r.StatusCode, r.body)
			}
			ep.h.do(http.MethodGet, ep.path, ep.allowed).expect(t, http.StatusMethodNotAllowed, errorBody("Method Not Allowed"))
		})
	}
	if r := d.verifier.doForm("/auth/introspect", d.gateway, form); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"active":true`) {
		t.Errorf("after the refusals, the listed gateway: %d %s", r.StatusCode, r.body)
	}
	d.issuer.doForm("/auth/introspect", d.gateway, form).expect(t, http.StatusNotFound, errorBody("Not Found"))
	d.verifier.doForm("/auth/revoke", d.login, form).expect(t, http.StatusNotFound, errorBody("Not Found"))
}

// TestRevoke_RefreshTokenEndsTheSessionAccessTokenItsStamp: revoking a refresh token ends
// its whole session (its access token, and its refresh token can no longer refresh);
// revoking an access token ends its stamp (its refresh token too, as logout does);
// another client may not revoke them; another session of the user is untouched; an
// unknown, malformed, expired or already revoked token is answered 200 all the same.
func TestRevoke_RefreshTokenEndsTheSessionAccessTokenItsStamp(t *testing.T) {
	d := newDeployment(t, false, nil)
	bystander := d.issue(t)
	for _, hint := range []string{"", "refresh_token", "access_token", "something_else"} {
		t.Run("refresh token, hint "+hint, func(t *testing.T) {
			s := d.issue(t)
			refreshed, r := d.refresh(t, http.MethodPost, s.RefreshToken)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
			}
			form := url.Values{"token": {refreshed.RefreshToken}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			d.issuer.doForm("/auth/revoke", d.login, form).expect(t, http.StatusOK, "")
			d.verifier.do(http.MethodGet, "/auth/verify", refreshed.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			_, r = d.refresh(t, http.MethodPost, refreshed.RefreshToken)
			r.expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			d.issuer.doForm("/auth/revoke", d.login, form).expect(t, http.StatusOK, "")
		})
	}
	t.Run("access token", func(t *testing.T) {
		s := d.issue(t)
		d.issuer.doForm("/auth/revoke", d.login, url.Values{"token": {s.Token}, "token_type_hint": {"access_token"}}).expect(t, http.StatusOK, "")
		d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
		_, r := d.refresh(t, http.MethodPost, s.RefreshToken)
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("the refresh token of a revoked access token's stamp: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("a token of another client", func(t *testing.T) {
		// RFC 7009 section 2.1: a client revokes the tokens issued to it (client_id)
		// only; a seed-format token, which names no client, any listed client may.
		s := d.issue(t)
		for _, tok := range []string{s.Token, s.RefreshToken} {
			d.issuer.doForm("/auth/revoke", d.desk, url.Values{"token": {tok}}).
				expect(t, http.StatusForbidden, `{"error":"unauthorized_client","error_description":"the token was issued to another client"}`)
		}
		if r := d.verifier.do(http.MethodGet, "/auth/verify", s.Token); r.StatusCode != http.StatusOK {
			t.Errorf("after another client's refused revocation: %d %s", r.StatusCode, r.body)
		}
		seed := tokentest.IssueSeedShaped(t, d.verifier.set, 15*time.Minute)
		d.issuer.doForm("/auth/revoke", d.desk, url.Values{"token": {seed}}).expect(t, http.StatusOK, "")
		d.verifier.do(http.MethodGet, "/auth/verify", seed).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	})
	expired := tokentest.Claims(time.Minute)
	expired.IssuedAt, expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
	for _, tok := range []string{"garbage", d.verifier.signClaims(t, expired), tokentest.SeedForeignToken} {
		d.issuer.doForm("/auth/revoke", d.login, url.Values{"token": {tok}}).expect(t, http.StatusOK, "")
	}
	if r := d.verifier.do(http.MethodGet, "/auth/verify", bystander.Token); r.StatusCode != http.StatusOK {
		t.Errorf("another session of the user after the revocations: %d %s", r.StatusCode, r.body)
	}
}

// TestTokenEndpoint_RefreshGrantWithAStandardClient: golang.org/x/oauth2, pointed at the
// token_endpoint of the discovery document, refreshes a session through the
// refresh_token grant; the new access token verifies, the spent refresh token is
// refused as invalid_grant (and, as reuse, ends the session).
func TestTokenEndpoint_RefreshGrantWithAStandardClient(t *testing.T) {
	d := newDeployment(t, false, nil)
	s := d.issue(t)
	cfg := oauth2.Config{ClientID: "web", Endpoint: oauth2.Endpoint{TokenURL: d.issuer.srv.URL + "/auth/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, d.issuer.client)
	stale := &oauth2.Token{AccessToken: s.Token, RefreshToken: s.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	fresh, err := cfg.TokenSource(ctx, stale).Token()
	if err != nil {
		t.Fatalf("refresh through x/oauth2: %v", err)
	}
	if fresh.AccessToken == s.Token || fresh.RefreshToken == s.RefreshToken || fresh.TokenType != "Bearer" || time.Until(fresh.Expiry) < 14*time.Minute {
		t.Fatalf("refreshed token = %+v", fresh)
	}
	if r := d.verifier.do(http.MethodGet, "/auth/verify", fresh.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("verify of the refreshed access token: %d %s", r.StatusCode, r.body)
	}
	d.verifier.do(http.MethodGet, "/auth/verify", s.Token).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	_, err = cfg.TokenSource(ctx, stale).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("the spent refresh token: %v, want 400 invalid_grant", err)
	}
	d.verifier.do(http.MethodGet, "/auth/verify", fresh.AccessToken).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))

	for _, tc := range []struct{ body, want string }{
		{"grant_type=password&username=a&password=b", `{"error":"unsupported_grant_type","error_description":"grant_type password is not supported: only refresh_token"}`},
		{"grant_type=refresh_token", `{"error":"invalid_request","error_description":"parameter refresh_token is required"}`},
		{"refresh_token=x", `{"error":"invalid_request","error_description":"parameter grant_type is required"}`},
		{"grant_type=refresh_token&refresh_token=" + s.Token, `{"error":"invalid_grant","error_description":"invalid or expired jwt, internal=token is not a refresh token"}`},
	} {
		r := d.issuer.doRaw(http.MethodPost, "/auth/token", "", "application/x-www-form-urlencoded", tc.body)
		if r.StatusCode != http.StatusBadRequest || r.body != tc.want {
			t.Errorf("%s: %d %s, want 400 %s", tc.body, r.StatusCode, r.body, tc.want)
		}
	}
}

// TestDiscovery_ListsExactlyWhatTheEndpointsDo: the discovery document (at both
// well-known names) names the verifier's JWKS and introspection, the issuer's token and
// revocation endpoints, the one grant, no response type, and how callers authenticate.
func TestDiscovery_ListsExactlyWhatTheEndpointsDo(t *testing.T) {
	h := newHarness(t, nil, func(c *harnessConfig) { c.cfg.TokenServiceURL = "https://auth-issuer.test.svc" })
	want := `{"issuer":"` + testIssuer + `","jwks_uri":"` + testIssuer + `/.well-known/jwks.json",` +
		`"token_endpoint":"https://auth-issuer.test.svc/auth/token","revocation_endpoint":"https://auth-issuer.test.svc/auth/revoke",` +
		`"introspection_endpoint":"` + testIssuer + `/auth/introspect","response_types_supported":[],"subject_types_supported":["public"],` +
		`"id_token_signing_alg_values_supported":["ES256"],"grant_types_supported":["refresh_token"],` +
		`"token_endpoint_auth_methods_supported":["none"],` +
		`"revocation_endpoint_auth_methods_supported":["https://auth.hiringo.tech/oauth/client-auth/kubernetes-service-account-token"],` +
		`"introspection_endpoint_auth_methods_supported":["https://auth.hiringo.tech/oauth/client-auth/kubernetes-service-account-token"],` +
		`"claims_supported":["iss","sub","aud","exp","iat","nbf","jti","client_id","sid","user"]}`
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		r := h.do(http.MethodGet, path, "")
		if r.StatusCode != http.StatusOK || r.body != want {
			t.Errorf("%s: %d %s\nwant %s", path, r.StatusCode, r.body, want)
		}
	}
	bare := newHarness(t, nil)
	var doc map[string]any
	if err := json.Unmarshal([]byte(bare.do(http.MethodGet, "/.well-known/openid-configuration", "").body), &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["token_endpoint"]; ok || len(doc["grant_types_supported"].([]any)) != 0 {
		t.Errorf("without a token service URL the document still names a token endpoint or grant: %v", doc)
	}
}

// TestVerify_AudiencesEnforcedInTheSeedsMessageFormat: with audiences configured, verify,
// logout and introspection refuse an access token for another audience (401 in the
// seed's format; introspection inactive) and accept one for theirs; a seed-format token
// without aud keeps verifying, unless aud is required.
func TestVerify_AudiencesEnforcedInTheSeedsMessageFormat(t *testing.T) {
	withAud := func(h *harness, aud ...string) string {
		c := tokentest.Claims(15 * time.Minute)
		c.Audience = aud
		return h.signClaims(t, c)
	}
	for _, tc := range []struct {
		name    string
		require bool
		tok     func(*harness) string
		want    string
	}{
		{"the AuthService's audience", false, func(h *harness) string { return withAud(h, "api.example.com") }, ""},
		{"another audience", false, func(h *harness) string { return withAud(h, "other.example.com") }, "token has invalid audience"},
		{"a seed-format token without aud", false, func(h *harness) string { return tokentest.IssueSeedShaped(t, h.set, 15*time.Minute) }, ""},
		{"a seed-format token without aud, aud required", true, func(h *harness) string { return tokentest.IssueSeedShaped(t, h.set, 15*time.Minute) }, "aud claim is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, withAudiences(tc.require, "api.example.com", "orders"))
			tok := tc.tok(h)
			if tc.want == "" {
				if r := h.do(http.MethodGet, "/auth/verify", tok); r.StatusCode != http.StatusOK {
					t.Fatalf("verify: %d %s", r.StatusCode, r.body)
				}
				h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, loggedOutBody)
				return
			}
			want := errorBody("invalid or expired jwt, internal=" + tc.want)
			h.do(http.MethodGet, "/auth/verify", tok).expect(t, http.StatusUnauthorized, want)
			h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, want)
		})
	}
	// Introspection answers as verify: a foreign-audience token is inactive.
	d := newDeployment(t, false, nil, withAudiences(false, "api.example.com"))
	c := tokentest.Claims(15 * time.Minute)
	c.Audience = []string{"other.example.com"}
	r := d.verifier.doForm("/auth/introspect", d.gateway, url.Values{"token": {d.verifier.signClaims(t, c)}})
	if r.StatusCode != http.StatusOK || r.body != inactiveBody {
		t.Errorf("introspection of a foreign-audience token: %d %s", r.StatusCode, r.body)
	}
}

// TestIssue_NeverSignsARefreshTokenWithAPublishedKey: while the issuer's key set has no
// refresh-token key (a Secret written before they existed, until the operator's next
// pass), issuance and refresh answer 503 rather than sign a refresh token that standard
// consumers could verify; once the key is there, refresh tokens name it, and a refresh
// token signed by the signing key before the upgrade still refreshes.
func TestIssue_NeverSignsARefreshTokenWithAPublishedKey(t *testing.T) {
	d := newDeployment(t, false, nil)
	full := d.verifier.set
	legacy := keydomain.Set{}
	for _, k := range full.Keys {
		k.Refresh = nil
		legacy.Keys = append(legacy.Keys, k)
	}
	writeKeys := func(s keydomain.Set, wantRefreshKey bool) {
		t.Helper()
		if err := devkeys.WriteMounted(d.verifier.dir, s); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			signer, _ := d.issuer.keys.Current().Signer()
			if (signer.Refresh != nil) == wantRefreshKey {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the issuer did not load the rewritten key set")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	writeKeys(legacy, false)
	d.issuer.doBody(http.MethodPost, "/auth/token", d.login, userBody).expect(t, http.StatusServiceUnavailable, errorBody("signing keys not loaded"))

	active := tokentest.Active(t, full)
	old := jwt.NewWithClaims(jwt.SigningMethodES256, tokentest.Claims(time.Hour))
	old.Header["kid"], old.Header["typ"] = active.ID, token.TypeRefresh
	oldRefresh, err := old.SignedString(active.Private)
	if err != nil {
		t.Fatal(err)
	}
	writeKeys(full, true)
	s := d.issue(t)
	parsed, _, err := jwt.NewParser().ParseUnverified(s.RefreshToken, &token.Claims{})
	if err != nil || parsed.Header["kid"] != active.Refresh.ID {
		t.Fatalf("a new refresh token's header %v (%v), want kid %s, the refresh-token key's", parsed.Header, err, active.Refresh.ID)
	}
	if jwks := d.verifier.do(http.MethodGet, "/.well-known/jwks.json", "").body; strings.Contains(jwks, active.Refresh.ID) {
		t.Fatal("the JWKS lists the refresh-token key")
	}
	if _, r := d.refresh(t, http.MethodPost, oldRefresh); r.StatusCode != http.StatusCreated {
		t.Fatalf("a refresh token signed by the signing key before the upgrade: %d %s", r.StatusCode, r.body)
	}
}

// TestAudit_RevocationAndTheRefreshGrant: a revocation writes one audit line naming the
// user, the session, the signing key's kid (for a refresh token too, never its
// refresh-token key's) and the caller; a refused or empty one writes none; the
// refresh_token grant is audited as refresh; no token reaches the log.
func TestAudit_RevocationAndTheRefreshGrant(t *testing.T) {
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newDeployment(t, false, nil)
	kc, _ := kube(t)
	clients := clientauth.New(clientauth.Config{
		Reviews: kc.AuthenticationV1().TokenReviews(), Audience: clientAudience,
		Clients: []clientauth.ServiceAccount{{Namespace: "login", Name: "login-service"}, {Namespace: "login", Name: "support-desk"}},
	})
	d.issuer = newReplica(d.verifier, asIssuer(clients, false), withLogger(log))
	kid := signingKid(t, d)
	s := d.issue(t)
	r := d.issuer.doRaw(http.MethodPost, "/auth/token", "", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.RefreshToken}}.Encode())
	var refreshed tokenPair
	if err := json.Unmarshal([]byte(r.body), &refreshed); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("refresh grant: %d %s", r.StatusCode, r.body)
	}
	d.issuer.doForm("/auth/revoke", d.login, url.Values{"token": {refreshed.RefreshToken}}).expect(t, http.StatusOK, "")
	d.issuer.doForm("/auth/revoke", d.login, url.Values{"token": {"garbage"}}).expect(t, http.StatusOK, "")
	d.issuer.doForm("/auth/revoke", d.desk, url.Values{"token": {refreshed.Token}}).expect(t, http.StatusForbidden,
		`{"error":"unauthorized_client","error_description":"the token was issued to another client"}`)

	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(s.Token, &c); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"level": "INFO", "msg": "audit", "event": "issue", "user_id": "u-42", "session_id": c.User.Auth.ID, "kid": kid, "caller": "login/login-service"},
		{"level": "INFO", "msg": "audit", "event": "refresh", "user_id": "u-42", "session_id": c.User.Auth.ID, "kid": kid},
		{"level": "INFO", "msg": "audit", "event": "revoke", "user_id": "u-42", "session_id": c.User.Auth.ID, "kid": kid, "caller": "login/login-service"},
	}
	out := sink.String()
	got := auditLines(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v || len(got[i]) != len(want[i]) {
				t.Errorf("audit line %d = %v, want %v", i, got[i], want[i])
				break
			}
		}
	}
	for _, tok := range []string{s.Token, s.RefreshToken, refreshed.Token, refreshed.RefreshToken, d.login, d.desk} {
		for _, part := range append(strings.Split(tok, "."), tok) {
			if strings.Contains(out, part) {
				t.Errorf("the log holds a token or a part of one: %q", part)
			}
		}
	}
}

// tokenPair is RFC 6749's token response, as the refresh_token grant answers.
type tokenPair struct {
	Token        string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}
