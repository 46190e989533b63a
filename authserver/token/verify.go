package token

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keyset"
)

// Algorithm is the only signing algorithm the server accepts.
const Algorithm = "ES256"

// DefaultMaxBytes is the longest token accepted unless configured otherwise.
const DefaultMaxBytes = 8192

// MaxLeeway is the largest clock leeway any verifier may be configured with (the
// AuthService's spec.tokens.leeway is capped at it). Revocation entries outlive their
// tokens by it, so a leeway raised later cannot revive a logged-out token.
const MaxLeeway = 5 * time.Minute

// Kind tells access tokens from refresh tokens, by their header's typ.
type Kind int

const (
	// Access tokens are presented to verify, logout and introspection. Their typ is
	// "at+jwt" (RFC 9068, what the issuer sets), "JWT" (as the original's) or absent.
	Access Kind = iota
	// Refresh tokens are presented to refresh and revocation only; typ "refresh+jwt".
	Refresh
)

// Header typ values the server sets.
const (
	TypeAccess  = "at+jwt"
	TypeRefresh = "refresh+jwt"
	// typeSeed is the typ of the original's tokens.
	typeSeed = "JWT"
)

// maxExpUnix is the largest exp whose milliseconds fit in an int64 (Redis' PXAT).
const maxExpUnix = math.MaxInt64 / 1000

// KeySource returns the current key set, or nil when none is loaded.
type KeySource interface {
	Current() *keyset.Set
}

// Verified is a token that passed verification.
type Verified struct {
	Claims Claims
	// KeyID is the token's kid (for a refresh token, the kid of the signing key its
	// refresh-token key belongs to); empty for a token without one, which any
	// published key may have signed.
	KeyID string
	// BlacklistID is the token's identity for the blacklist, the same for every
	// encoding of the token; see BlacklistID.
	BlacklistID string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// IssuedAt is the token's iat; zero when it has none.
	IssuedAt time.Time
	// KeySet is the key set the token was verified against.
	KeySet *keyset.Set
}

// Verifier checks tokens against the current key set.
type Verifier struct {
	keys     KeySource
	parser   *jwt.Parser
	maxBytes int
	leeway   time.Duration
	issuer   string
	// audiences, when set, are the aud values an access token must name one of;
	// requireAudience refuses an access token without aud.
	audiences       []string
	requireAudience bool
	life            [2]time.Duration
	now             func() time.Time
	// keyless is what the keyfunc returns for a token without kid, made once per
	// key set rather than per token.
	keyless atomic.Pointer[keylessKeys]
}

// keylessKeys are the keys a token without kid is tried against in set: the one key
// itself when there is only one (no loop), else a jwt.VerificationKeySet.
type keylessKeys struct {
	set  *keyset.Set
	keys any
}

// VerifierOptions tune a Verifier.
type VerifierOptions struct {
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// MaxBytes is the longest token accepted; 0 means DefaultMaxBytes.
	MaxBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Issuer, when set, is the only iss accepted; a token without iss (the
	// original's) still verifies.
	Issuer string
	// Audiences, when set, are the aud values of which an access token must name at
	// least one. A token without aud (the original's) still verifies unless
	// RequireAudience is set.
	Audiences       []string
	RequireAudience bool
	// MaxAccessLifetime and MaxRefreshLifetime, when set, bound exp - iat (exp - now
	// for a token without iat) of each kind, plus the leeway: a token beyond is
	// refused, however well signed.
	MaxAccessLifetime  time.Duration
	MaxRefreshLifetime time.Duration
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
	} else {
		opts.Now = time.Now
	}
	return &Verifier{
		keys: keys, parser: jwt.NewParser(popts...), maxBytes: opts.MaxBytes, leeway: opts.Leeway,
		issuer: opts.Issuer, audiences: opts.Audiences, requireAudience: opts.RequireAudience,
		life: [2]time.Duration{opts.MaxAccessLifetime, opts.MaxRefreshLifetime}, now: opts.Now,
	}
}

// Leeway is the clock skew the verifier allows.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks an access token: VerifyKind(raw, Access).
func (v *Verifier) Verify(raw string) (Verified, error) { return v.VerifyKind(raw, Access) }

// VerifyKind checks raw's size, signature, algorithm, type, time claims, issuer,
// audience and user. An access token with a kid is checked against that key only; one
// without (as the original issued) against at most keyset.MaxKeylessKeys published keys,
// newest first. A refresh token is checked against the refresh-token key its kid names
// (the issuer's set alone has them) or, for one issued before refresh keys existed,
// against the signing key its kid names. Failures are *InvalidError, or ErrNoKeys.
func (v *Verifier) VerifyKind(raw string, kind Kind) (Verified, error) {
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
		if err := checkType(t, kind); err != nil {
			return nil, err
		}
		if kind == Refresh {
			return selectRefreshKey(set, t, &kid)
		}
		return v.selectKeys(set, t, &kid)
	})
	if err != nil {
		return Verified{}, invalid(innermostCause(err), err)
	}
	if err := v.checkClaims(&claims, kind); err != nil {
		return Verified{}, invalid(err.Error(), err)
	}
	id, err := blacklistID(tok, claims.ID)
	if err != nil {
		return Verified{}, invalid(err.Error(), err)
	}
	out := Verified{Claims: claims, KeyID: kid, BlacklistID: id, ExpiresAt: claims.ExpiresAt.Time, KeySet: set}
	if claims.IssuedAt != nil {
		out.IssuedAt = claims.IssuedAt.Time
	}
	return out, nil
}

// checkType refuses a token of the other kind, told by its header's typ: a refresh
// token is never an access token and the reverse.
func checkType(t *jwt.Token, kind Kind) error {
	typ, _ := t.Header["typ"].(string)
	isRefresh := strings.EqualFold(typ, TypeRefresh)
	switch {
	case kind == Refresh && !isRefresh:
		return errNotRefresh
	case kind == Access && isRefresh:
		return errRefreshAsAccess
	case kind == Access && typ != "" && !isAccessType(typ):
		return fmt.Errorf("token type %q is not an access token", typ)
	}
	return nil
}

// isAccessType reports whether typ names an access token: RFC 9068's at+jwt, with or
// without the "application/" that RFC 7515 lets a typ leave out, or the original's JWT.
// It does not allocate: it runs on every verification.
func isAccessType(typ string) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	return strings.EqualFold(typ, TypeAccess) || strings.EqualFold(typ, typeSeed)
}

// checkClaims refuses what a signature cannot make acceptable: no user, a sub or sid
// that contradicts the user claim, another issuer, an access token for none of the
// audiences, an exp beyond what a millisecond clock holds, or a lifetime longer than
// this kind may have.
func (v *Verifier) checkClaims(c *Claims, kind Kind) error {
	if c.User.ID == "" {
		return errNoUser
	}
	if c.Subject != "" && c.Subject != c.User.ID {
		return errSubject
	}
	if c.SessionID != "" && c.SessionID != c.User.Auth.ID {
		return errSessionID
	}
	if v.issuer != "" && c.Issuer != "" && c.Issuer != v.issuer {
		return errIssuer
	}
	if kind == Access {
		if err := v.checkAudience(c.Audience); err != nil {
			return err
		}
	}
	exp := c.ExpiresAt.Time
	if exp.Unix() > maxExpUnix || exp.Unix() < 0 {
		return errAbsurdExp
	}
	if max := v.life[kind]; max > 0 {
		start := v.now()
		if c.IssuedAt != nil {
			start = c.IssuedAt.Time
		}
		if exp.Sub(start) > max+v.leeway {
			return fmt.Errorf("token lifetime exceeds %s", max)
		}
	}
	return nil
}

// checkAudience refuses an access token that names none of the verifier's audiences,
// and one without aud when they are required. Its causes read as golang-jwt's.
func (v *Verifier) checkAudience(aud jwt.ClaimStrings) error {
	if len(v.audiences) == 0 {
		return nil
	}
	if len(aud) == 0 {
		if v.requireAudience {
			return errNoAudience
		}
		return nil
	}
	for _, a := range aud {
		if slices.Contains(v.audiences, a) {
			return nil
		}
	}
	return jwt.ErrTokenInvalidAudience
}

// selectRefreshKey is the keyfunc of refresh tokens: the refresh-token key the kid
// names or, for a refresh token signed before refresh keys existed, the signing key
// of that kid. A refresh token always has a kid. It records the kid of the signing key
// (the one status.keys and the audit name), not the refresh-token key's.
func selectRefreshKey(set *keyset.Set, t *jwt.Token, kid *string) (any, error) {
	id, ok := t.Header["kid"].(string)
	if !ok {
		return nil, errUnknownKID
	}
	if pub, of, ok := set.LookupRefresh(id); ok {
		*kid = of
		return pub, nil
	}
	if pub, ok := set.Lookup(id); ok {
		*kid = id
		return pub, nil
	}
	return nil, errUnknownKID
}

// selectKeys is the keyfunc: the kid's key, or every published key when the token
// has no kid (golang-jwt then tries each in turn). It records the kid it selected.
func (v *Verifier) selectKeys(set *keyset.Set, t *jwt.Token, kid *string) (any, error) {
	raw, has := t.Header["kid"]
	if !has {
		if k := v.keyless.Load(); k != nil && k.set == set {
			return k.keys, nil
		}
		k := &keylessKeys{set: set, keys: keylessOf(set)}
		v.keyless.Store(k)
		return k.keys, nil
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

// keylessOf is what a token without kid is verified against in set.
func keylessOf(set *keyset.Set) any {
	keys := set.Keyless()
	if len(keys) == 1 {
		return keys[0]
	}
	vks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(keys))}
	for _, k := range keys {
		vks.Keys = append(vks.Keys, k)
	}
	return vks
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
