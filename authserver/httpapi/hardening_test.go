package httpapi_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestVerify_AbsurdLifetimesAreRefused: a well-signed token whose exp - iat exceeds
// the longest lifetime plus leeway, or whose exp overflows a millisecond clock (its
// logout could never be stored), is refused by verify and logout with 401, never a
// lasting 503.
func TestVerify_AbsurdLifetimesAreRefused(t *testing.T) {
	h := newHarness(t, nil)
	tooLong := tokentest.Claims(25 * time.Hour)
	noIatTooLong := tokentest.Claims(25 * time.Hour)
	noIatTooLong.IssuedAt = nil
	overflow := tokentest.Claims(time.Minute)
	overflow.ExpiresAt = &jwt.NumericDate{Time: time.Unix(math.MaxInt64/1000+1, 0)}
	for _, tc := range []struct {
		name  string
		c     jwt.Claims
		cause string
	}{
		{"25h lifetime", tooLong, "token lifetime exceeds 24h0m0s"},
		{"25h without iat", noIatTooLong, "token lifetime exceeds 24h0m0s"},
		{"exp beyond milliseconds", overflow, "token exp is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := h.signClaims(t, tc.c)
			want := errorBody("invalid or expired jwt, internal=" + tc.cause)
			h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, want)
			h.do(http.MethodGet, "/auth/verify", tok).expect(t, http.StatusUnauthorized, want)
		})
	}
	h.do(http.MethodPost, "/auth/logout", h.signClaims(t, tokentest.Claims(24*time.Hour))).expect(t, http.StatusOK, loggedOutBody)
}

// TestVerify_TokenWithoutKidTriesAFewNewestKeysOnly publishes many retired keys, as
// manual rotations leave them: a token without kid is checked against the active,
// next and most recently retired keys only (keyset.MaxKeylessKeys), so it costs a
// bounded number of signature checks; one signed by an older retired key is refused.
func TestVerify_TokenWithoutKidTriesAFewNewestKeysOnly(t *testing.T) {
	set := mustSet(t)
	var signers []keydomain.Key
	for range 8 {
		signers = append(signers, tokentest.Active(t, set))
		set = tokentest.Rotate(t, set)
	}
	// The rotations ran within a second; give the retirements distinct times, in order.
	for i, k := range signers {
		at := time.Now().Add(time.Duration(i-len(signers)) * time.Minute)
		for j := range set.Keys {
			if set.Keys[j].ID == k.ID {
				set.Keys[j].RetiredAt = &at
			}
		}
	}
	dir := t.TempDir()
	if err := devkeys.WriteMounted(dir, set); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, onPackageRedis(t), dir, set, t.Name()+":")
	newestRetired, oldest := signers[len(signers)-1], signers[0]
	if keyset.MaxKeylessKeys >= len(set.Keys) {
		t.Fatalf("the set has %d keys, not more than the %d tried", len(set.Keys), keyset.MaxKeylessKeys)
	}
	ok := tokentest.Sign(t, newestRetired.Private, "", tokentest.Claims(15*time.Minute))
	if r := h.do(http.MethodGet, "/auth/verify", ok); r.StatusCode != http.StatusOK {
		t.Fatalf("no kid, newest retired key: %d %s", r.StatusCode, r.body)
	}
	old := tokentest.Sign(t, oldest.Private, "", tokentest.Claims(15*time.Minute))
	h.do(http.MethodGet, "/auth/verify", old).expect(t, http.StatusUnauthorized, errorBody("invalid or expired jwt, internal=crypto/ecdsa: verification error"))
	withKid := tokentest.Sign(t, oldest.Private, oldest.ID, tokentest.Claims(15*time.Minute))
	if r := h.do(http.MethodGet, "/auth/verify", withKid); r.StatusCode != http.StatusOK {
		t.Fatalf("the oldest retired key by kid: %d %s", r.StatusCode, r.body)
	}
}
