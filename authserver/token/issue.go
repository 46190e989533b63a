package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// NewClaims returns seed-shaped claims for user, issued at now and valid for ttl, with
// nbf one second before iat as the original set it.
func NewClaims(user User, now time.Time, ttl time.Duration) Claims {
	now = now.Truncate(time.Second)
	return Claims{
		User: user,
		RegisteredClaims: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
		},
	}
}

// Issue signs claims as an access token with key's private part, with the key's kid
// in the header.
func Issue(key keyfiles.Key, claims Claims) (string, error) {
	return IssueKind(key, claims, Access)
}

// IssueKind signs claims as a token of kind: the header's typ says which (TypeAccess
// or TypeRefresh), so that neither is accepted where the other belongs.
func IssueKind(key keyfiles.Key, claims Claims, kind Kind) (string, error) {
	if key.Private == nil {
		return "", errors.New("key " + key.ID + " has no private part (retired keys cannot sign)")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = key.ID
	t.Header["typ"] = TypeAccess
	if kind == Refresh {
		t.Header["typ"] = TypeRefresh
	}
	s, err := t.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}
