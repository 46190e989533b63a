package issuance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
)

// ErrReuse is returned by Refresh for a refresh token that was exchanged before: its
// whole session is revoked now.
var ErrReuse = errors.New("refresh token reused: session revoked")

// ErrNoSigningKey is returned while no key that can sign is loaded.
var ErrNoSigningKey = errors.New("no signing key loaded")

// Store is the revocation store as issuance uses it; blacklist.Store is the one
// implementation.
type Store interface {
	Cutoff(ctx context.Context, userID string) (time.Time, error)
	CutOff(ctx context.Context, sub blacklist.Subject, check bool, at, until time.Time) (time.Time, error)
	Rotate(ctx context.Context, sub blacklist.Subject, stampUntil, sessionUntil time.Time) error
}

// KeySource returns the current key set, loaded for signing.
type KeySource interface {
	Current() *keyset.Set
}

// Config is what a Service needs.
type Config struct {
	Keys KeySource
	// Verifier checks refresh tokens; it must verify with every key of the private
	// Secret (retired keys kept for refresh included).
	Verifier  *token.Verifier
	Store     Store
	Lifetimes sessions.Lifetimes
	// Issuer and Audiences become iss and aud of every token; both optional.
	Issuer    string
	Audiences []string
	// SingleSession makes each issuance end the user's earlier sessions.
	SingleSession bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Pair is one issuance or refresh: an access and a refresh token of one stamp.
type Pair struct {
	User            token.User
	Access, Refresh string
	AccessExpiresAt time.Time
	// KeyID is the kid of the key that signed both tokens.
	KeyID string
}

// Service issues and refreshes sessions.
type Service struct {
	cfg Config
}

// New makes a Service of cfg.
func New(cfg Config) *Service {
	cfg.Lifetimes = cfg.Lifetimes.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Issue starts a new session for u (u.Auth is ignored: the session id and stamp are
// made here) on behalf of clientID, the caller that becomes the tokens' client_id. With
// SingleSession the user's earlier tokens are revoked first. A token is never issued at
// or before the user's cutoff, so a logout everywhere in the same second does not revoke
// it. Store failures wrap blacklist.ErrUnavailable.
func (s *Service) Issue(ctx context.Context, u token.User, clientID string) (Pair, error) {
	if u.ID == "" {
		return Pair{}, errors.New("user id is empty")
	}
	now := s.cfg.Now()
	var cutoff time.Time
	var err error
	if s.cfg.SingleSession {
		cutoff, err = s.cfg.Store.CutOff(ctx, blacklist.Subject{UserID: u.ID}, false, now, s.cfg.Lifetimes.UserEntryExpiry(now))
	} else {
		cutoff, err = s.cfg.Store.Cutoff(ctx, u.ID)
	}
	if err != nil {
		return Pair{}, err
	}
	u.Auth = token.Session{ID: uuid.NewString(), Token: newStamp()}
	return s.sign(u, clientID, issueTime(now, cutoff))
}

// Refresh exchanges a refresh token for a new pair under a new stamp and revokes the
// old stamp (its access token too). A refresh token whose stamp was rotated before
// is reuse: the session is revoked and ErrReuse returned. Errors otherwise:
// *token.InvalidError, token.ErrNoKeys, sessions.ErrRevoked, or the store's failure.
func (s *Service) Refresh(ctx context.Context, raw string) (Pair, error) {
	v, err := s.cfg.Verifier.VerifyKind(raw, token.Refresh)
	if err != nil {
		return Pair{}, err
	}
	sub := sessions.SubjectOf(v)
	if !sub.HasSession() {
		return Pair{}, &token.InvalidError{Cause: "refresh token has no session"}
	}
	now := s.cfg.Now()
	err = s.cfg.Store.Rotate(ctx, sub, s.cfg.Lifetimes.StampEntryExpiry(v, now), s.cfg.Lifetimes.SessionEntryExpiry(now))
	switch {
	case errors.Is(err, blacklist.ErrReuse):
		return Pair{}, ErrReuse
	case errors.Is(err, blacklist.ErrAlreadyBlacklisted):
		return Pair{}, sessions.ErrRevoked
	case err != nil:
		return Pair{}, err
	}
	u := v.Claims.User
	u.Auth.Token = newStamp()
	return s.sign(u, v.Claims.ClientID, now)
}

// issueTime is when a token issued at now says it was issued: after the user's
// cutoff, which revokes every token issued at or before it (iat has whole seconds).
func issueTime(now, cutoff time.Time) time.Time {
	now = now.Truncate(time.Second)
	if !cutoff.IsZero() && !now.After(cutoff) {
		return cutoff.Add(time.Second)
	}
	return now
}

// sign makes the access and refresh token of u's stamp, for clientID. A key set whose
// active key has no refresh-token key yet (written before they existed) cannot sign:
// the operator adds one on its next pass.
func (s *Service) sign(u token.User, clientID string, iat time.Time) (Pair, error) {
	set := s.cfg.Keys.Current()
	if set == nil {
		return Pair{}, ErrNoSigningKey
	}
	key, ok := set.Signer()
	if !ok || key.Refresh == nil {
		return Pair{}, ErrNoSigningKey
	}
	access := s.claims(u, clientID, iat, s.cfg.Lifetimes.Access)
	refresh := s.claims(u, clientID, iat, s.cfg.Lifetimes.Refresh)
	a, err := token.IssueKind(key, access, token.Access)
	if err != nil {
		return Pair{}, err
	}
	r, err := token.IssueKind(key, refresh, token.Refresh)
	if err != nil {
		return Pair{}, err
	}
	return Pair{User: u, Access: a, Refresh: r, AccessExpiresAt: access.ExpiresAt.Time, KeyID: key.ID}, nil
}

// claims are the claims of one token of u's stamp: the seed's, and RFC 9068's sub,
// client_id, jti, iss and aud, with sid naming the session.
func (s *Service) claims(u token.User, clientID string, iat time.Time, ttl time.Duration) token.Claims {
	c := token.NewClaims(u, iat, ttl)
	c.ID = uuid.NewString()
	c.Subject = u.ID
	c.SessionID = u.Auth.ID
	c.ClientID = clientID
	c.Issuer = s.cfg.Issuer
	if len(s.cfg.Audiences) > 0 {
		c.Audience = jwt.ClaimStrings(s.cfg.Audiences)
	}
	return c
}

// newStamp is a fresh 32-byte session stamp in hex, shaped as the seed's user.auth.token.
func newStamp() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}
