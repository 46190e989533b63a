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
