package tokentest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/token"
)

// SeedUser is the user of the seed's recorded exchanges.
var SeedUser = token.User{
	ID:        "66312a78-1f9e-4d78-a9fb-231e84967f60",
	Name:      "Rachel",
	Email:     "xxxx@gmail.com",
	CreatedAt: "2021-11-02T09:47:21.917582+01:00",
	UpdatedAt: "2021-11-02T09:47:21.917582+01:00",
	Auth: token.Session{
		ID:    "95a51a3f-56fa-4889-bf80-3c57d054b1c2",
		Token: "4501e511eba5c3debd09ff31968059fe6d6b03558de0d5c24da13e7453fdc1ee",
	},
}

// SeedForeignToken is the seed's second request's token: signed by a key no test set
// holds, and expired since 2021.
const SeedForeignToken = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjp7ImlkIjoiNjYzMTJhNzgtMWY5ZS00ZDc4LWE5ZmItMjMxZTg0OTY3ZjYwIiwibmFtZSI6IlJhY2hlbCIsImVtYWlsIjoieHh4eEBnbWFpbC5jb20iLCJlbWFpbF92ZXJpZmllZF9hdCI6bnVsbCwiY3JlYXRlZF9hdCI6IjIwMjEtMTEtMDJUMDk6NDc6MjEuOTE3NTgyKzAxOjAwIiwidXBkYXRlZF9hdCI6IjIwMjEtMTEtMTFUMjA6MTA6NTYuMDAxODAyKzAxOjAwIiwiYXV0aCI6eyJpZCI6Ijk1YTUxYTNmLTU2ZmEtNDg4OS1iZjgwLTNjNTdkMDU0YjFjMiIsInRva2VuIjoiM2U4MjA5Mjc4OWQ5NTVmNWYwZDc5MWIwMjA2YTRkNWU1MGY5NTQ0NGQyOTIxNWY2MjFiNzdmNzA0ODZlMzhkNyJ9fSwiZXhwIjoxNjM2NjU5MjE4LCJpYXQiOjE2MzY2NTgzMTgsIm5iZiI6MTYzNjY1ODMxN30.1llVyczGYwrr_p8jkwSgvTNONDuoEeo0m_PEJ3uvsIotkX8obZENDirREa6Gpnyek9hjcF6ZPPv3BqiMKNmBgw"

// NewSet makes a fresh key set (active + next) or fails the test.
func NewSet(t testing.TB) keydomain.Set {
	t.Helper()
	s, err := keyfiles.NewSet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Active returns the active key of s.
func Active(t testing.TB, s keydomain.Set) keydomain.Key {
	t.Helper()
	k, ok := s.Active()
	if !ok {
		t.Fatal("set has no active key")
	}
	return k
}

// Rotate returns s after one rotation: next becomes active, active becomes retired,
// a new next key is made.
func Rotate(t testing.TB, s keydomain.Set) keydomain.Set {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	out := keydomain.Set{}
	for _, k := range s.Keys {
		switch k.State {
		case keydomain.StateActive:
			k.State, k.Private, k.RetiredAt = keydomain.StateRetired, nil, &now
			exp := now.Add(time.Hour)
			k.ExpiresAt = &exp
			if k.Refresh != nil {
				r := *k.Refresh
				r.Private = nil
				k.Refresh = &r
			}
		case keydomain.StateNext:
			k.Activate(now)
		}
		out.Keys = append(out.Keys, k)
	}
	next, err := keyfiles.GenerateKey(keydomain.StateNext, now)
	if err != nil {
		t.Fatal(err)
	}
	out.Keys = append(out.Keys, next)
	return out
}

// StaticKeys serves one fixed key set, as token.KeySource.
type StaticKeys struct{ Set *keyset.Set }

// Current returns the fixed set.
func (s StaticKeys) Current() *keyset.Set { return s.Set }

// Static wraps a key-file set as a token.KeySource.
func Static(t testing.TB, s keydomain.Set) StaticKeys {
	t.Helper()
	ks, err := keyset.NewSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return StaticKeys{Set: ks}
}

// Claims are seed-shaped claims for SeedUser, valid for ttl from now, in SeedUser's
// session under a fresh stamp (each call is a login or refresh of its own, so logging
// one out leaves the others valid).
func Claims(ttl time.Duration) token.Claims {
	u := SeedUser
	var b [32]byte
	_, _ = rand.Read(b[:])
	u.Auth.Token = hex.EncodeToString(b[:])
	return token.NewClaims(u, time.Now(), ttl)
}

// Sign signs claims with key (ES256), with the kid header set when kid is non-empty.
func Sign(t testing.TB, priv *ecdsa.PrivateKey, kid string, claims jwt.Claims) string {
	t.Helper()
	return SignWith(t, jwt.SigningMethodES256, priv, kid, claims)
}

// SignWith signs claims with any method and a key of the type it takes, with the kid
// header set when kid is non-empty: the way to make tokens the server must refuse.
func SignWith(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue signs seed-shaped claims valid for ttl with the active key of s, kid set.
func Issue(t testing.TB, s keydomain.Set, ttl time.Duration) string {
	t.Helper()
	k := Active(t, s)
	return Sign(t, k.Private, k.ID, Claims(ttl))
}

// IssueSeedShaped signs seed-shaped claims valid for ttl with the active key of s and
// no kid, exactly as the original service issued tokens.
func IssueSeedShaped(t testing.TB, s keydomain.Set, ttl time.Duration) string {
	t.Helper()
	return Sign(t, Active(t, s).Private, "", Claims(ttl))
}

// ForeignKey is a P-256 key that belongs to no set.
func ForeignKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Unsigned builds a token from a raw header and claims with the given signature
// segment, for forms no library would sign.
func Unsigned(header, claims any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

// HighS re-encodes an ES256 token with the other valid signature (r, n-s): the same
// token for a verifier, a different string.
func HighS(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := make([]byte, 64)
	copy(out, sig[:32])
	s.FillBytes(out[32:])
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// SlackBits re-encodes a token by setting the unused low bits of the signature's last
// base64url character: it decodes to the same bytes, so the token still verifies.
func SlackBits(t testing.TB, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	if last < 0 {
		t.Fatal("token does not end in base64url")
	}
	// A 64-byte signature is 86 characters: the last holds 2 data bits and 4 slack bits.
	changed := alphabet[last|0x0f]
	if changed == tok[len(tok)-1] {
		changed = alphabet[last&^0x0f|0x01]
	}
	return tok[:len(tok)-1] + string(changed)
}
