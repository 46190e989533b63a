package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// FuzzParseAuthorization feeds arbitrary Authorization header values through header
// parsing and verification: nothing may panic, every failure must be one of the two
// documented errors, and nothing but a token signed by the set may verify.
func FuzzParseAuthorization(f *testing.F) {
	set := tokentest.NewSet(f)
	good := tokentest.Issue(f, set, time.Hour)
	for _, seed := range []string{
		"Bearer " + good,
		"Bearer " + tokentest.IssueSeedShaped(f, set, time.Hour),
		"Bearer " + tokentest.SeedForeignToken,
		"Bearer " + tokentest.HighS(f, good),
		"Bearer " + strings.Repeat(".", 3000),
		"Bearer eyJhbGciOiJub25lIn0.e30.",
		"Bearer a.b.c",
		"bearer ",
		"Basic dXNlcjpwYXNz",
		"",
	} {
		f.Add(seed)
	}
	v := token.NewVerifier(tokentest.Static(f, set), token.VerifierOptions{Leeway: time.Minute})
	f.Fuzz(func(t *testing.T, header string) {
		raw, err := token.FromAuthorization(header)
		if err != nil {
			if !errors.Is(err, token.ErrMissingToken) {
				t.Fatalf("header error %v is not ErrMissingToken", err)
			}
			return
		}
		got, err := v.Verify(raw)
		if err != nil {
			var inv *token.InvalidError
			if !errors.As(err, &inv) || inv.Cause == "" {
				t.Fatalf("verify error %v (%T) is not an InvalidError with a cause", err, err)
			}
			return
		}
		if got.BlacklistID == "" || got.ExpiresAt.IsZero() {
			t.Fatalf("verified token without blacklist id or expiry: %+v", got)
		}
	})
}
