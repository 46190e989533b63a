package token_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

const leeway = 30 * time.Second

func newVerifier(t *testing.T) (*token.Verifier, tokentest.StaticKeys, func(time.Duration) string) {
	t.Helper()
	set := tokentest.NewSet(t)
	keys := tokentest.Static(t, set)
	v := token.NewVerifier(keys, token.VerifierOptions{Leeway: leeway})
	return v, keys, func(ttl time.Duration) string { return tokentest.Issue(t, set, ttl) }
}

func TestVerify_AcceptsTokensWithAndWithoutKid(t *testing.T) {
	set := tokentest.NewSet(t)
	next, _ := set.Next()
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway})
	for name, tok := range map[string]string{
		"kid of active key":   tokentest.Issue(t, set, time.Minute),
		"seed-shaped, no kid": tokentest.IssueSeedShaped(t, set, time.Minute),
		"no kid, next key":    tokentest.Sign(t, next.Private, "", tokentest.Claims(time.Minute)),
		"kid of next key":     tokentest.Sign(t, next.Private, next.ID, tokentest.Claims(time.Minute)),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tokentest.SeedUser
			want.Auth.Token = got.Claims.User.Auth.Token // a fresh stamp per token
			if got.Claims.User != want || len(want.Auth.Token) != 64 {
				t.Errorf("user = %+v, want %+v with a 64-hex stamp", got.Claims.User, want)
			}
			if !strings.HasPrefix(got.BlacklistID, "sig:") || len(got.BlacklistID) != 4+43 {
				t.Errorf("BlacklistID = %q, want sig: and a base64url SHA-256", got.BlacklistID)
			}
		})
	}
}

func TestVerify_RejectsBadInputWithItsCause(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway})
	foreign := tokentest.ForeignKey(t)
	now := time.Now()
	valid := tokentest.Claims(time.Minute)
	pubDER, _ := x509.MarshalPKIXPublicKey(active.Public)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	withTimes := func(exp, nbf, iat time.Time) token.Claims {
		c := tokentest.Claims(time.Minute)
		c.ExpiresAt, c.NotBefore, c.IssuedAt = jwt.NewNumericDate(exp), jwt.NewNumericDate(nbf), jwt.NewNumericDate(iat)
		return c
	}
	noExp := tokentest.Claims(time.Minute)
	noExp.ExpiresAt = nil
	good := tokentest.Issue(t, set, time.Minute)

	cases := []struct {
		name, tok, cause string
	}{
		{"alg none", tokentest.Unsigned(map[string]string{"alg": "none", "typ": "JWT"}, valid, ""), "signing method none is invalid"},
		{"HS256 keyed with the public key", tokentest.SignWith(t, jwt.SigningMethodHS256, pubPEM, active.ID, valid), "signing method HS256 is invalid"},
		{"RS256", tokentest.SignWith(t, jwt.SigningMethodRS256, rsaKey, "", valid), "signing method RS256 is invalid"},
		{"foreign ES256 key, no kid", tokentest.Sign(t, foreign, "", valid), "crypto/ecdsa: verification error"},
		{"foreign ES256 key claiming our kid", tokentest.Sign(t, foreign, active.ID, valid), "crypto/ecdsa: verification error"},
		{"seed token from another service", tokentest.SeedForeignToken, "crypto/ecdsa: verification error"},
		{"expired", tokentest.Sign(t, active.Private, active.ID, withTimes(now.Add(-time.Minute), now.Add(-time.Hour), now.Add(-time.Hour))), "token is expired"},
		{"nbf in the future", tokentest.Sign(t, active.Private, active.ID, withTimes(now.Add(time.Hour), now.Add(10*time.Minute), now)), "token is not valid yet"},
		{"iat in the future", tokentest.Sign(t, active.Private, active.ID, withTimes(now.Add(time.Hour), now, now.Add(10*time.Minute))), "token used before issued"},
		{"missing exp", tokentest.Sign(t, active.Private, active.ID, noExp), "exp claim is required"},
		{"two segments", "abc.def", "token contains an invalid number of segments"},
		{"four segments", good + ".x", "token contains an invalid number of segments"},
		{"thousands of dots", strings.Repeat(".", 10000), "token is longer than 8192 bytes"},
		{"thousands of dots under the limit", strings.Repeat(".", 4000), "token contains an invalid number of segments"},
		{"over the size limit", good + strings.Repeat("A", 8192), "token is longer than 8192 bytes"},
		{"bad base64 header", "!!!." + strings.SplitN(good, ".", 2)[1], "could not base64 decode header: illegal base64 data at input byte 0"},
		{"bad base64 signature", good[:strings.LastIndexByte(good, '.')+1] + "***", "could not base64 decode signature: illegal base64 data at input byte 0"},
		{"header not JSON", "bm90anNvbg." + strings.SplitN(good, ".", 2)[1], "could not JSON decode header: invalid character 'o' in literal null (expecting 'u')"},
		{"kid that is a path", tokentest.Sign(t, active.Private, "../../../etc/passwd", valid), "unknown kid"},
		{"unknown kid", tokentest.Sign(t, active.Private, "nope", valid), "unknown kid"},
		{"kid not a string", tokentest.Unsigned(map[string]any{"alg": "ES256", "kid": 7}, valid, "AAAA"), "unknown kid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.tok)
			var inv *token.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Verify error = %v (%T), want *InvalidError", err, err)
			}
			if inv.Cause != tc.cause {
				t.Errorf("cause = %q, want %q", inv.Cause, tc.cause)
			}
			if want := "invalid or expired jwt, internal=" + tc.cause; err.Error() != want {
				t.Errorf("message = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestVerify_LeewayAcceptsSlightlyExpired(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	now := time.Now()
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway})
	c := tokentest.Claims(time.Minute)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
	if _, err := v.Verify(tokentest.Sign(t, active.Private, active.ID, c)); err != nil {
		t.Fatalf("token 10s past exp with 30s leeway: %v", err)
	}
}

func TestVerify_NoKeysLoaded(t *testing.T) {
	v := token.NewVerifier(tokentest.StaticKeys{}, token.VerifierOptions{})
	if _, err := v.Verify("a.b.c"); !errors.Is(err, token.ErrNoKeys) {
		t.Fatalf("err = %v, want ErrNoKeys", err)
	}
}

func TestBlacklistID_SameForEveryEncodingOfOneToken(t *testing.T) {
	v, _, issue := newVerifier(t)
	tok := issue(time.Minute)
	want, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	for name, copy := range map[string]string{
		"high-S signature": tokentest.HighS(t, tok),
		"slack bits":       tokentest.SlackBits(t, tok),
		"both":             tokentest.SlackBits(t, tokentest.HighS(t, tok)),
	} {
		t.Run(name, func(t *testing.T) {
			if copy == tok {
				t.Fatal("re-encoding produced the same string")
			}
			got, err := v.Verify(copy)
			if err != nil {
				t.Fatalf("re-encoded copy does not verify: %v", err)
			}
			if got.BlacklistID != want.BlacklistID {
				t.Errorf("BlacklistID = %s, want %s", got.BlacklistID, want.BlacklistID)
			}
		})
	}
	other, err := v.Verify(issue(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if other.BlacklistID == want.BlacklistID {
		t.Error("two different tokens share a BlacklistID")
	}
}

func TestBlacklistID_UsesJTIWhenPresent(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway})
	c1 := tokentest.Claims(time.Minute)
	c1.ID = "session-42"
	c2 := tokentest.Claims(2 * time.Minute)
	c2.ID = "session-42"
	a, err := v.Verify(tokentest.Sign(t, active.Private, active.ID, c1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Verify(tokentest.Sign(t, active.Private, "", c2))
	if err != nil {
		t.Fatal(err)
	}
	if a.BlacklistID != b.BlacklistID || !strings.HasPrefix(a.BlacklistID, "jti:") {
		t.Errorf("ids %q and %q, want one jti: id", a.BlacklistID, b.BlacklistID)
	}
}

// TestVerify_EnforcesAudiences: with audiences configured, an access token must name
// one of them; one without aud (the seed's) passes unless aud is required.
func TestVerify_EnforcesAudiences(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	withAud := func(aud ...string) string {
		c := tokentest.Claims(time.Minute)
		c.Audience = aud
		return tokentest.Sign(t, active.Private, active.ID, c)
	}
	seed := tokentest.IssueSeedShaped(t, set, time.Minute)
	cases := []struct {
		name      string
		audiences []string
		require   bool
		tok       string
		cause     string
	}{
		{"no audiences configured, any aud", nil, false, withAud("elsewhere"), ""},
		{"one of the audiences", []string{"api", "orders"}, false, withAud("orders"), ""},
		{"one of several in the token", []string{"api"}, false, withAud("elsewhere", "api"), ""},
		{"foreign audience", []string{"api"}, false, withAud("elsewhere"), "token has invalid audience"},
		{"seed token without aud", []string{"api"}, false, seed, ""},
		{"seed token without aud, aud required", []string{"api"}, true, seed, "aud claim is required"},
		{"empty aud array, aud required", []string{"api"}, true, withAud(), "aud claim is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway, Audiences: tc.audiences, RequireAudience: tc.require})
			_, err := v.Verify(tc.tok)
			if tc.cause == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || err.Error() != "invalid or expired jwt, internal="+tc.cause {
				t.Fatalf("Verify error = %v, want cause %q", err, tc.cause)
			}
		})
	}
}

// TestVerify_AcceptsRFC9068AccessTokensAndRefusesContradictions: typ at+jwt (with or
// without application/) is an access token; a sub or sid that names another user or
// session than the user claim is refused.
func TestVerify_AcceptsRFC9068AccessTokensAndRefusesContradictions(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{Leeway: leeway})
	signTyp := func(typ string, edit func(*token.Claims)) string {
		c := tokentest.Claims(time.Minute)
		c.Subject, c.SessionID, c.ClientID = c.User.ID, c.User.Auth.ID, "system:serviceaccount:login:login-service"
		edit(&c)
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["kid"], tok.Header["typ"] = active.ID, typ
		s, err := tok.SignedString(active.Private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	same := func(*token.Claims) {}
	cases := []struct{ name, tok, cause string }{
		{"at+jwt", signTyp("at+jwt", same), ""},
		{"application/at+jwt", signTyp("application/at+jwt", same), ""},
		{"JWT, as the original's", signTyp("JWT", same), ""},
		{"issued by token.Issue", func() string {
			s, err := token.Issue(active, tokentest.Claims(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), ""},
		{"another typ", signTyp("id+jwt", same), `token type "id+jwt" is not an access token`},
		{"sub of another user", signTyp("at+jwt", func(c *token.Claims) { c.Subject = "someone-else" }), "token sub does not match user.id"},
		{"sid of another session", signTyp("at+jwt", func(c *token.Claims) { c.SessionID = "another-session" }), "token sid does not match user.auth.id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(tc.tok)
			if tc.cause == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Claims.User.ID != tokentest.SeedUser.ID {
					t.Errorf("user = %q", got.Claims.User.ID)
				}
				return
			}
			if err == nil || err.Error() != "invalid or expired jwt, internal="+tc.cause {
				t.Fatalf("Verify error = %v, want cause %q", err, tc.cause)
			}
		})
	}
}

// TestVerifyKind_RefreshTokensVerifyOnlyWhereTheirKeyIs: a refresh token is signed by
// its key's refresh-token key, which only the issuer's set (the whole Secret) holds: it
// verifies there, through a rotation that retires its key, and nowhere a verifier's set
// (the public projection) is used, as a refresh or an access token. A refresh token
// signed before refresh keys existed (by the signing key) still verifies at the issuer.
func TestVerifyKind_RefreshTokensVerifyOnlyWhereTheirKeyIs(t *testing.T) {
	set := tokentest.NewSet(t)
	active := tokentest.Active(t, set)
	refresh, err := token.IssueKind(active, tokentest.Claims(time.Hour), token.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	legacy := jwt.NewWithClaims(jwt.SigningMethodES256, tokentest.Claims(time.Hour))
	legacy.Header["kid"], legacy.Header["typ"] = active.ID, token.TypeRefresh
	legacyTok, err := legacy.SignedString(active.Private)
	if err != nil {
		t.Fatal(err)
	}
	issuerSet := func(s keydomain.Set) *token.Verifier {
		files, err := keyfiles.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := keyfiles.Decode(files)
		if err != nil {
			t.Fatal(err)
		}
		return token.NewVerifier(tokentest.Static(t, decoded), token.VerifierOptions{Leeway: leeway})
	}
	verifierSet := func(s keydomain.Set) *token.Verifier {
		files, err := keyfiles.PublicProjection(s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := keyfiles.DecodePublic(files)
		if err != nil {
			t.Fatal(err)
		}
		return token.NewVerifier(tokentest.Static(t, decoded), token.VerifierOptions{Leeway: leeway})
	}
	rotated := tokentest.Rotate(t, tokentest.Rotate(t, set))
	for _, tc := range []struct {
		name  string
		v     *token.Verifier
		tok   string
		kind  token.Kind
		cause string
	}{
		{"issuer, refresh", issuerSet(set), refresh, token.Refresh, ""},
		{"issuer after two rotations retired the key", issuerSet(rotated), refresh, token.Refresh, ""},
		{"issuer, refresh signed by the signing key before refresh keys", issuerSet(set), legacyTok, token.Refresh, ""},
		{"issuer, as an access token", issuerSet(set), refresh, token.Access, "token is a refresh token, not an access token"},
		{"verifier, refresh", verifierSet(set), refresh, token.Refresh, "unknown kid"},
		{"verifier, as an access token", verifierSet(set), refresh, token.Access, "token is a refresh token, not an access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.VerifyKind(tc.tok, tc.kind)
			if tc.cause == "" {
				if err != nil {
					t.Fatalf("VerifyKind: %v", err)
				}
				return
			}
			if err == nil || err.Error() != "invalid or expired jwt, internal="+tc.cause {
				t.Fatalf("VerifyKind error = %v, want cause %q", err, tc.cause)
			}
		})
	}
	// The header says which key signed: the refresh key's kid, never a published one.
	parsed, _, err := jwt.NewParser().ParseUnverified(refresh, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["kid"] != active.Refresh.ID || parsed.Header["typ"] != token.TypeRefresh {
		t.Errorf("refresh header = %v, want kid %s and typ %s", parsed.Header, active.Refresh.ID, token.TypeRefresh)
	}
}
