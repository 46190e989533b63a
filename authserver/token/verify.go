package token

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keyset"
)

// Algorithm is the only signing algorithm the server accepts.
const Algorithm = "ES256"

// DefaultMaxBytes is the longest token accepted unless configured otherwise.
const DefaultMaxBytes = 8192

// KeySource returns the current key set, or nil when none is loaded.
type KeySource interface {
	Current() *keyset.Set
}

// Verified is a token that passed verification.
type Verified struct {
	Claims Claims
	// KeyID is the token's kid; empty for a token without one, which any published
	// key may have signed.
	KeyID string
	// BlacklistID is the token's identity for the blacklist, the same for every
	// encoding of the token; see BlacklistID.
	BlacklistID string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// KeySet is the key set the token was verified against.
	KeySet *keyset.Set
}

// Verifier checks tokens against the current key set.
type Verifier struct {
	keys     KeySource
	parser   *jwt.Parser
	maxBytes int
	leeway   time.Duration
}

// VerifierOptions tune a Verifier.
type VerifierOptions struct {
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// MaxBytes is the longest token accepted; 0 means DefaultMaxBytes.
	MaxBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewVerifier makes a verifier that accepts ES256 tokens signed by a key of keys,
// with a required exp.
func NewVerifier(keys KeySource, opts VerifierOptions) *Verifier {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
	}
	if opts.Now != nil {
		popts = append(popts, jwt.WithTimeFunc(opts.Now))
	}
	return &Verifier{keys: keys, parser: jwt.NewParser(popts...), maxBytes: opts.MaxBytes, leeway: opts.Leeway}
}

// Leeway is the clock skew the verifier allows.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks raw's size, signature, algorithm and time claims. A token with a kid
// is checked against that key only; one without (as the original issued) against
// every published key. Failures are *InvalidError, or ErrNoKeys.
func (v *Verifier) Verify(raw string) (Verified, error) {
	if len(raw) > v.maxBytes {
		return Verified{}, invalid(fmt.Sprintf("token is longer than %d bytes", v.maxBytes), nil)
	}
	set := v.keys.Current()
	if set == nil {
		return Verified{}, ErrNoKeys
	}
	var claims Claims
	var kid string
	tok, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		return selectKeys(set, t, &kid)
	})
	if err != nil {
		return Verified{}, invalid(innermostCause(err), err)
	}
	id, err := blacklistID(tok, claims.ID)
	if err != nil {
		return Verified{}, invalid(err.Error(), err)
	}
	return Verified{Claims: claims, KeyID: kid, BlacklistID: id, ExpiresAt: claims.ExpiresAt.Time, KeySet: set}, nil
}

// selectKeys is the keyfunc: the kid's key, or every published key when the token
// has no kid (golang-jwt then tries each in turn). It records the kid it selected.
func selectKeys(set *keyset.Set, t *jwt.Token, kid *string) (any, error) {
	raw, has := t.Header["kid"]
	if !has {
		keys := set.Keys()
		vks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(keys))}
		for _, k := range keys {
			vks.Keys = append(vks.Keys, k.Public)
		}
		return vks, nil
	}
	id, ok := raw.(string)
	if !ok {
		return nil, errUnknownKID
	}
	pub, ok := set.Lookup(id)
	if !ok {
		return nil, errUnknownKID
	}
	*kid = id
	return pub, nil
}

// blacklistID is the token's identity in the blacklist: "jti:" and the SHA-256 of its
// jti when it has one, otherwise "sig:" and the SHA-256 of its decoded header and
// claims. Hashing decoded bytes, never the token string, makes every re-encoding of
// the same token (base64url slack bits, a high-S copy of the signature) map to the
// same id.
func blacklistID(t *jwt.Token, jti string) (string, error) {
	h := sha256.New()
	if jti != "" {
		h.Write([]byte("jti\x00"))
		h.Write([]byte(jti))
		return "jti:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
	}
	header, rest, _ := strings.Cut(t.Raw, ".")
	claims, _, _ := strings.Cut(rest, ".")
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", fmt.Errorf("could not base64 decode header: %w", err)
	}
	cb, err := base64.RawURLEncoding.DecodeString(claims)
	if err != nil {
		return "", fmt.Errorf("could not base64 decode claim: %w", err)
	}
	h.Write(hb)
	h.Write([]byte{0})
	h.Write(cb)
	return "sig:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}
