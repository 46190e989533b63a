package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keydomain"
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
func Issue(key keydomain.Key, claims Claims) (string, error) {
	return IssueKind(key, claims, Access)
}

// IssueKind signs claims as a token of kind. An access token is signed by key itself,
// typ at+jwt (RFC 9068), kid the key's; a refresh token by the key's refresh-token key,
// which is never published, typ refresh+jwt, kid the refresh key's: no consumer that
// verifies with the published keys can accept it.
func IssueKind(key keydomain.Key, claims Claims, kind Kind) (string, error) {
	priv, kid, typ := key.Private, key.ID, TypeAccess
	if kind == Refresh {
		if key.Refresh == nil {
			return "", errors.New("key " + key.ID + " has no refresh key (the operator adds one on its next pass)")
		}
		priv, kid, typ = key.Refresh.Private, key.Refresh.ID, TypeRefresh
	}
	if priv == nil {
		return "", errors.New("key " + key.ID + " has no private part (retired keys cannot sign)")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = kid
	t.Header["typ"] = typ
	s, err := t.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}
