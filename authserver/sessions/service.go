package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// ErrRevoked is returned for a token that was logged out: by itself, its stamp, its
// session or its user's cutoff.
var ErrRevoked = errors.New("token is blacklisted")

// ClockSkewMargin is added to every revocation entry's expiry beyond the token's exp
// and token.MaxLeeway: a verifier whose clock runs this much behind Redis' still
// finds the entry while it would accept the token.
const ClockSkewMargin = time.Minute

// Store is the revocation store as the service uses it; blacklist.Store is the one
// implementation. The service derives a subject's ids (blacklist.IDsOf: digests) once
// per request and hands them to the store, which names its keys after them.
type Store interface {
	CheckIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs) (bool, error)
	RevokeIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs, until time.Time) error
	RevokeSessionIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs, until time.Time) error
	CutOff(ctx context.Context, sub blacklist.Subject, check bool, at, until time.Time) (time.Time, error)
}

// Config is what a Service composes.
type Config struct {
	Verifier *token.Verifier
	Store    Store
	// Cache, when not nil, answers Verify for tokens verified before; the store must
	// then publish revocations to the channel the cache follows.
	Cache *verifycache.Cache
	// Lifetimes bound how long a revocation entry must live; zero values take the
	// defaults.
	Lifetimes Lifetimes
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Lifetimes are the longest lifetimes tokens of each kind may have.
type Lifetimes struct {
	Access, Refresh time.Duration
}

// Default lifetimes: the original's 15 minutes and 30 days.
const (
	DefaultAccessLifetime  = 15 * time.Minute
	DefaultRefreshLifetime = 720 * time.Hour
)

// Service verifies and logs out tokens.
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

// SubjectOf is what the store knows of v.
func SubjectOf(v token.Verified) blacklist.Subject {
	u := v.Claims.User
	return blacklist.Subject{
		UserID: u.ID, TokenID: v.BlacklistID,
		SessionID: u.Auth.ID, Stamp: u.Auth.Token, IssuedAt: v.IssuedAt,
	}
}

// Verify checks an access token as forward-auth does: the cache first, else
// signature, claims and the store in one round trip. Errors: *token.InvalidError,
// token.ErrNoKeys, ErrRevoked, or the store's failure.
func (s *Service) Verify(ctx context.Context, raw string) (verifycache.Principal, error) {
	cache := s.cfg.Cache
	if cache != nil {
		if p, ok := cache.Lookup(raw); ok {
			return p, nil
		}
	}
	v, err := s.cfg.Verifier.Verify(raw)
	if err != nil {
		return verifycache.Principal{}, err
	}
	var ticket verifycache.Ticket
	if cache != nil {
		ticket = cache.Begin()
	}
	sub := SubjectOf(v)
	ids := blacklist.IDsOf(sub)
	revoked, err := s.cfg.Store.CheckIDs(ctx, sub, ids)
	switch {
	case err != nil:
		return verifycache.Principal{}, err
	case revoked:
		return verifycache.Principal{}, ErrRevoked
	}
	if cache != nil {
		cache.Add(ticket, raw, v, ids.All())
	}
	return verifycache.PrincipalOf(v), nil
}

// Logout verifies an access token and revokes its session stamp (every token of that
// login, access and refresh, in every encoding) or, for a token without a session,
// the token alone. It returns the verified token; errors as Verify's.
func (s *Service) Logout(ctx context.Context, raw string) (token.Verified, error) {
	v, err := s.cfg.Verifier.Verify(raw)
	if err != nil {
		return token.Verified{}, err
	}
	sub := SubjectOf(v)
	ids := blacklist.IDsOf(sub)
	until := TokenEntryExpiry(v.ExpiresAt)
	if sub.HasSession() {
		until = s.cfg.Lifetimes.StampEntryExpiry(v, s.cfg.Now())
	}
	return v, s.revoked(s.cfg.Store.RevokeIDs(ctx, sub, ids, until), ids, false)
}

// LogoutAll verifies an access token and revokes every token of its user issued up
// to now (the user's cutoff), on every device. Errors as Verify's.
func (s *Service) LogoutAll(ctx context.Context, raw string) (token.Verified, error) {
	v, err := s.cfg.Verifier.Verify(raw)
	if err != nil {
		return token.Verified{}, err
	}
	sub := SubjectOf(v)
	now := s.cfg.Now()
	_, err = s.cfg.Store.CutOff(ctx, sub, true, now, s.cfg.Lifetimes.UserEntryExpiry(now))
	return v, s.revoked(err, blacklist.IDsOf(sub), true)
}

// ErrOtherClient is returned by Revoke for a token whose client_id names another client
// than the one asking: RFC 7009 section 2.1 lets a client revoke its own tokens only.
var ErrOtherClient = errors.New("the token was issued to another client")

// Revoke is RFC 7009 revocation of raw, which may be a refresh or an access token, on
// behalf of clientID: a refresh token ends its whole session (every stamp, access and
// refresh), an access token its stamp, as Logout does. refreshFirst
// (token_type_hint=refresh_token) only changes the order the kinds are tried in. It
// returns the revoked token and whether raw verified as either kind: a token that
// verifies as neither (foreign, expired, malformed) revokes nothing and is no error,
// nor is one revoked before. A token issued to another client (its client_id; a token
// without one, as the original's, belongs to none) is ErrOtherClient and revokes
// nothing. Other errors: token.ErrNoKeys, or the store's failure.
func (s *Service) Revoke(ctx context.Context, raw string, refreshFirst bool, clientID string) (token.Verified, bool, error) {
	kinds := []token.Kind{token.Access, token.Refresh}
	if refreshFirst {
		kinds[0], kinds[1] = kinds[1], kinds[0]
	}
	for _, kind := range kinds {
		v, err := s.cfg.Verifier.VerifyKind(raw, kind)
		var invalid *token.InvalidError
		switch {
		case errors.As(err, &invalid):
			continue
		case err != nil:
			return token.Verified{}, false, err
		}
		if v.Claims.ClientID != "" && v.Claims.ClientID != clientID {
			return v, false, ErrOtherClient
		}
		sub := SubjectOf(v)
		ids := blacklist.IDsOf(sub)
		if kind == token.Refresh && sub.HasSession() {
			err = s.cfg.Store.RevokeSessionIDs(ctx, sub, ids, s.cfg.Lifetimes.SessionEntryExpiry(s.cfg.Now()))
			if already := errors.Is(err, blacklist.ErrAlreadyBlacklisted); (err == nil || already) && s.cfg.Cache != nil {
				s.cfg.Cache.Revoke(ids.Session)
			}
		} else {
			until := TokenEntryExpiry(v.ExpiresAt)
			if sub.HasSession() {
				until = s.cfg.Lifetimes.StampEntryExpiry(v, s.cfg.Now())
			}
			err = s.revoked(s.cfg.Store.RevokeIDs(ctx, sub, ids, until), ids, false)
		}
		if err != nil && !errors.Is(err, blacklist.ErrAlreadyBlacklisted) && !errors.Is(err, ErrRevoked) {
			return v, true, err
		}
		return v, true, nil
	}
	return token.Verified{}, false, nil
}

// revoked drops what a revocation (or an earlier one) covers from this replica's
// cache and maps the store's answer.
func (s *Service) revoked(err error, ids blacklist.IDs, user bool) error {
	already := errors.Is(err, blacklist.ErrAlreadyBlacklisted)
	if s.cfg.Cache != nil && (err == nil || already) {
		switch {
		case user:
			s.cfg.Cache.Revoke(ids.User)
		case ids.Stamp != "":
			s.cfg.Cache.Revoke(ids.Stamp)
		default:
			s.cfg.Cache.Revoke(ids.Token)
		}
	}
	if already {
		return ErrRevoked
	}
	return err
}

// TokenEntryExpiry is when a per-token entry may go: the token's exp plus the largest
// leeway any verifier may use plus the skew margin, so neither a leeway raised later
// nor a clock behind Redis' revives the token.
func TokenEntryExpiry(exp time.Time) time.Time {
	return exp.Add(token.MaxLeeway + ClockSkewMargin)
}

// StampEntryExpiry is when a stamp's entry may go: no token of the stamp (the
// refresh token of the same login lives longest) verifies after it. now stands in
// for a missing iat.
func (l Lifetimes) StampEntryExpiry(v token.Verified, now time.Time) time.Time {
	start := v.IssuedAt
	if start.IsZero() {
		start = now
	}
	last := start.Add(l.Refresh)
	if v.ExpiresAt.After(last) {
		last = v.ExpiresAt
	}
	return TokenEntryExpiry(last)
}

// SessionEntryExpiry is when a session's entry, written now, may go.
func (l Lifetimes) SessionEntryExpiry(now time.Time) time.Time {
	return TokenEntryExpiry(now.Add(l.Refresh))
}

// UserEntryExpiry is when a user's cutoff, written at now, may go: every token issued
// before now has expired by then.
func (l Lifetimes) UserEntryExpiry(now time.Time) time.Time {
	return TokenEntryExpiry(now.Add(max(l.Refresh, l.Access)))
}

// WithDefaults fills unset lifetimes with the defaults.
func (l Lifetimes) WithDefaults() Lifetimes {
	if l.Access <= 0 {
		l.Access = DefaultAccessLifetime
	}
	if l.Refresh <= 0 {
		l.Refresh = DefaultRefreshLifetime
	}
	return l
}
