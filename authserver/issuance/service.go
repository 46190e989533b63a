package issuance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

// ErrNoSigningKey is returned while no key that can sign is loaded.
var ErrNoSigningKey = errors.New("no signing key loaded")

// ReuseError names the session that a reused refresh token ended, for the audit
// trail; it is blacklist.ErrReuse.
type ReuseError struct {
	UserID, SessionID string
	// KeyID is the kid of the key that signed the reused token.
	KeyID string
}

func (e *ReuseError) Error() string { return blacklist.ErrReuse.Error() }

// Unwrap makes errors.Is(err, blacklist.ErrReuse) hold.
func (e *ReuseError) Unwrap() error { return blacklist.ErrReuse }

// The defaults of the refresh policy (the server's flags).
const (
	// DefaultRefreshGrace covers a client that retries a refresh at once or after a
	// client timeout; MaxRefreshGrace bounds how long a stolen refresh token, replayed
	// before its rightful client used the new one, still works.
	DefaultRefreshGrace = 30 * time.Second
	MaxRefreshGrace     = 5 * time.Minute
	// DefaultRefreshesPerMinute is far above what a client refreshing when its access
	// token expires needs, and keeps a client in a loop from signing without end.
	DefaultRefreshesPerMinute = 10
	// DefaultSessionMaxLifetime is how long a login lasts at most, however often it
	// is refreshed: 90 days.
	DefaultSessionMaxLifetime = 2160 * time.Hour
)

// KeySource returns the current key set, loaded for signing.
type KeySource interface {
	Current() *keyset.Set
}

// Config is what a Service needs.
type Config struct {
	Keys KeySource
	// Verifier checks refresh tokens; it must verify with every key of the private
	// Secret (retired keys kept for refresh included).
	Verifier *token.Verifier
	// Sessions records sessions and revokes what a refresh replaces; its lifetimes are
	// the tokens'.
	Sessions *sessions.Service
	// Issuer and Audiences become iss and aud of every token; both optional.
	Issuer    string
	Audiences []string
	// SingleSession makes each issuance end the user's earlier sessions.
	SingleSession bool
	// RefreshGrace is how long after a refresh the refresh token it replaced still
	// gets a pair of the same new stamp (a client retrying a refresh whose answer it
	// lost), while the new refresh token has not been used; 0 makes every second use
	// of a refresh token reuse.
	RefreshGrace time.Duration
	// RefreshesPerMinute bounds the refreshes (grace answers included) of one
	// session per minute; 0 for no bound.
	RefreshesPerMinute int
	// SessionMaxLifetime is how long a session may be refreshed after its issuance;
	// its tokens never outlive it. 0 for no bound.
	SessionMaxLifetime time.Duration
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
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// policy is how the store keeps the sessions of this service; the sessions service adds
// the lifetimes of their entries.
func (s *Service) policy() blacklist.SessionPolicy {
	return blacklist.SessionPolicy{
		SingleSession: s.cfg.SingleSession, Grace: s.cfg.RefreshGrace,
		RefreshLimit: s.cfg.RefreshesPerMinute, RefreshWindow: time.Minute,
		MaxLifetime: s.cfg.SessionMaxLifetime,
	}
}

// Issue starts a new session for u (u.Auth is ignored: the session id and stamp are
// made here) on behalf of clientID, the caller that becomes the tokens' client_id. With
// SingleSession the user's earlier sessions end. The store sets iat by Redis' clock, after
// the user's cutoff and after any detected data loss, so that no server refuses the new
// tokens. Store failures wrap blacklist.ErrUnavailable; a full store also
// blacklist.ErrStoreFull.
func (s *Service) Issue(ctx context.Context, u token.User, clientID string) (Pair, error) {
	if u.ID == "" {
		return Pair{}, errors.New("user id is empty")
	}
	u.Auth = token.Session{ID: uuid.NewString(), Token: newStamp()}
	iat, err := s.cfg.Sessions.Begin(ctx, blacklist.Subject{UserID: u.ID, SessionID: u.Auth.ID, Stamp: u.Auth.Token}, s.policy())
	if err != nil {
		return Pair{}, err
	}
	return s.sign(u, clientID, iat, iat)
}

// Refresh exchanges a refresh token for a new pair under the next stamp and revokes
// the old stamp (its access token too). A refresh token whose stamp is not its
// session's current one is reuse: the session is revoked and a *ReuseError returned;
// the stamp just replaced, presented again within RefreshGrace, gets a pair of its
// successor instead. Errors otherwise: *token.InvalidError (a session past its
// maximum lifetime included), token.ErrNoKeys, blacklist.ErrRevoked,
// *blacklist.RateLimitedError, or the store's failure.
func (s *Service) Refresh(ctx context.Context, raw string) (Pair, error) {
	v, err := s.cfg.Verifier.VerifyKind(raw, token.Refresh)
	if err != nil {
		return Pair{}, err
	}
	sub := sessions.SubjectOf(v)
	if !sub.HasSession() {
		return Pair{}, &token.InvalidError{Cause: "refresh token has no session"}
	}
	u := v.Claims.User
	u.Auth.Token = successorStamp(u.Auth.ID, u.Auth.Token)
	rot, err := s.cfg.Sessions.Rotate(ctx, v, u.Auth.Token, s.policy())
	switch {
	case errors.Is(err, blacklist.ErrReuse):
		return Pair{}, &ReuseError{UserID: sub.UserID, SessionID: sub.SessionID, KeyID: v.KeyID}
	case errors.Is(err, blacklist.ErrSessionEnded):
		return Pair{}, &token.InvalidError{Cause: blacklist.ErrSessionEnded.Error()}
	case err != nil:
		return Pair{}, err
	}
	return s.sign(u, v.Claims.ClientID, rot.IssuedAt, rot.SessionStart)
}

// successorStamp is the stamp a refresh of stamp gives its session: derived, not
// drawn, so that a refresh retried within the grace period gets the same one and the
// store keeps no copy of it (it holds digests only). SHA-256 of the session id and
// the stamp, in hex, shaped as the seed's user.auth.token. A stamp is no secret (it is
// in every access token): it names a login for revocation; tokens stay unforgeable.
func successorStamp(session, stamp string) string {
	sum := sha256.Sum256([]byte("authserver-stamp-successor\x00" + session + "\x00" + stamp))
	return hex.EncodeToString(sum[:])
}

// sign makes the access and refresh token of u's stamp issued at iat, for clientID,
// neither outliving the session's maximum lifetime from start. A key set whose active key
// has no refresh-token key yet (written before they existed) cannot sign: the operator
// adds one on its next pass.
func (s *Service) sign(u token.User, clientID string, iat, start time.Time) (Pair, error) {
	set := s.cfg.Keys.Current()
	if set == nil {
		return Pair{}, ErrNoSigningKey
	}
	key, ok := set.Signer()
	if !ok || key.Refresh == nil {
		return Pair{}, ErrNoSigningKey
	}
	l := s.cfg.Sessions.Lifetimes()
	accessTTL, refreshTTL := s.lifetime(l.Access, iat, start), s.lifetime(l.Refresh, iat, start)
	if accessTTL <= 0 {
		return Pair{}, &token.InvalidError{Cause: blacklist.ErrSessionEnded.Error()}
	}
	access, refresh := s.claims(u, clientID, iat, accessTTL), s.claims(u, clientID, iat, refreshTTL)
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

// lifetime is ttl, cut so that a token issued at iat ends with its session (started
// at start) at the latest.
func (s *Service) lifetime(ttl time.Duration, iat, start time.Time) time.Duration {
	if s.cfg.SessionMaxLifetime <= 0 {
		return ttl
	}
	return min(ttl, start.Add(s.cfg.SessionMaxLifetime).Sub(iat))
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
