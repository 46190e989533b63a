package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// ClockSkewMargin is added to every revocation entry's expiry beyond the token's exp
// and token.MaxLeeway: a verifier whose clock runs this much behind Redis' still
// finds the entry while it would accept the token.
const ClockSkewMargin = time.Minute

// Store is the session and revocation store; blacklist.Store is the one in production,
// and internal/testutil/memstore the in-memory one of unit tests; both pass the
// conformance suite of internal/testutil/storetest. The service derives a subject's ids
// (blacklist.IDsOf: digests) once per request and hands them to the store, which names
// its keys after them. Its errors are blacklist's: ErrRevoked, ErrReuse,
// ErrSessionEnded, *RateLimitedError, and ErrUnavailable (with ErrStoreFull) for a store
// that cannot answer.
type Store interface {
	CheckIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs) (bool, error)
	RevokeIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs, e blacklist.Expiry) error
	RevokeSessionIDs(ctx context.Context, sub blacklist.Subject, ids blacklist.IDs, until time.Time) error
	CutOff(ctx context.Context, sub blacklist.Subject, check bool, keep time.Duration) (time.Time, error)
	ReadCutoff(ctx context.Context, userID string) (time.Time, error)
	Issue(ctx context.Context, sub blacklist.Subject, p blacklist.SessionPolicy) (time.Time, error)
	Rotate(ctx context.Context, sub blacklist.Subject, successor string, p blacklist.SessionPolicy, e blacklist.Expiry) (blacklist.Rotation, error)
	RevokeKeys(ctx context.Context, kids []string, until time.Time) error
}

// Config is what a Service composes.
type Config struct {
	Verifier *token.Verifier
	Store    Store
	// Cache, when not nil, answers Verify for tokens verified before; the store must
	// then publish revocations to the channel the cache follows.
	Cache *verifycache.Cache
	// Lifetimes are the lifetimes of this server's tokens; zero values take the
	// defaults. Revocation entries outlive the longest any server may run with.
	Lifetimes Lifetimes
	// Now is the clock; time.Now when nil. Cutoffs come from Redis' clock.
	Now func() time.Time
}

// Lifetimes are the lifetimes of the tokens a server issues or accepts.
type Lifetimes struct {
	Access, Refresh time.Duration
}

// Default lifetimes: the original's 15 minutes and 30 days.
const (
	DefaultAccessLifetime  = 15 * time.Minute
	DefaultRefreshLifetime = 720 * time.Hour
)

// MaxAccessLifetime and MaxRefreshLifetime bound what any server may run with
// (spec.tokens.maxLifetime and refreshLifetime have the same caps; --access-lifetime
// and --refresh-lifetime are refused beyond them). A revocation whose expiry cannot
// be taken from the tokens it covers lives for these, so that no server, whatever
// lifetime it runs with, revives a token another one issued (a rollout that raises a
// lifetime, or lowers it).
const (
	MaxAccessLifetime  = 24 * time.Hour
	MaxRefreshLifetime = 2160 * time.Hour
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

// Lifetimes are the token lifetimes the service keeps revocations for.
func (s *Service) Lifetimes() Lifetimes { return s.cfg.Lifetimes }

// Verify checks an access token as forward-auth does: the cache first, else
// signature, claims and the store in one round trip. Errors: *token.InvalidError,
// token.ErrNoKeys, blacklist.ErrRevoked, or the store's failure.
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
		return verifycache.Principal{}, blacklist.ErrRevoked
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
	return v, s.revoked(s.cfg.Store.RevokeIDs(ctx, sub, ids, s.cfg.Lifetimes.EntryExpiry(v, s.cfg.Now())), ids, false)
}

// LogoutAll verifies an access token and revokes every token of its user issued up
// to now (the user's cutoff), on every device. Errors as Verify's.
func (s *Service) LogoutAll(ctx context.Context, raw string) (token.Verified, error) {
	v, err := s.cfg.Verifier.Verify(raw)
	if err != nil {
		return token.Verified{}, err
	}
	sub := SubjectOf(v)
	_, err = s.cfg.Store.CutOff(ctx, sub, true, s.cfg.Lifetimes.UserEntryKeep())
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
		expiry := s.cfg.Lifetimes.EntryExpiry(v, s.cfg.Now())
		if kind == token.Refresh && sub.HasSession() {
			// The session's entry outlives any refresh token of it.
			err = s.cfg.Store.RevokeSessionIDs(ctx, sub, ids, expiry.Unrecorded)
			if already := errors.Is(err, blacklist.ErrRevoked); (err == nil || already) && s.cfg.Cache != nil {
				s.cfg.Cache.Revoke(ids.Session)
			}
		} else {
			err = s.revoked(s.cfg.Store.RevokeIDs(ctx, sub, ids, expiry), ids, false)
		}
		if err != nil && !errors.Is(err, blacklist.ErrRevoked) {
			return v, true, err
		}
		return v, true, nil
	}
	return token.Verified{}, false, nil
}

// LogoutUser revokes every token of userID issued up to now by the store's clock, as
// LogoutAll does without a token (an administrative logout), and returns that cutoff.
func (s *Service) LogoutUser(ctx context.Context, userID string) (time.Time, error) {
	return s.cfg.Store.CutOff(ctx, blacklist.Subject{UserID: userID}, false, s.cfg.Lifetimes.UserEntryKeep())
}

// UserCutoff is the cutoff of userID: every token of the user issued at or before it is
// revoked; zero when there is none.
func (s *Service) UserCutoff(ctx context.Context, userID string) (time.Time, error) {
	return s.cfg.Store.ReadCutoff(ctx, userID)
}

// RevokeKeys records kids as revoked signing keys, on every verifier at once, until no
// token any of them signed can be valid.
func (s *Service) RevokeKeys(ctx context.Context, kids []string) error {
	return s.cfg.Store.RevokeKeys(ctx, kids, s.cfg.Lifetimes.UserEntryExpiry(s.cfg.Now()))
}

// Begin records the new session of sub under policy p, whose lifetimes the service
// sets, and returns the iat its tokens carry (see blacklist.Store.Issue).
func (s *Service) Begin(ctx context.Context, sub blacklist.Subject, p blacklist.SessionPolicy) (time.Time, error) {
	return s.cfg.Store.Issue(ctx, sub, s.policy(p))
}

// Rotate makes successor the current stamp of v's session under policy p and revokes
// v's stamp until no token of it can verify (see blacklist.Store.Rotate).
func (s *Service) Rotate(ctx context.Context, v token.Verified, successor string, p blacklist.SessionPolicy) (blacklist.Rotation, error) {
	return s.cfg.Store.Rotate(ctx, SubjectOf(v), successor, s.policy(p), s.cfg.Lifetimes.EntryExpiry(v, s.cfg.Now()))
}

// policy is p with the lifetimes of the session's record and single-session marker.
func (s *Service) policy(p blacklist.SessionPolicy) blacklist.SessionPolicy {
	p.RecordLifetime, p.MarkerLifetime = s.cfg.Lifetimes.RecordLifetime(), s.cfg.Lifetimes.UserEntryKeep()
	return p
}

// revoked drops what a revocation (or an earlier one) covers from this replica's
// cache.
func (s *Service) revoked(err error, ids blacklist.IDs, user bool) error {
	already := errors.Is(err, blacklist.ErrRevoked)
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
	return err
}

// TokenEntryExpiry is when a per-token entry may go: the token's exp plus the largest
// leeway any verifier may use plus the skew margin, so neither a leeway raised later
// nor a clock behind Redis' revives the token.
func TokenEntryExpiry(exp time.Time) time.Time {
	return exp.Add(token.MaxLeeway + ClockSkewMargin)
}

// EntryExpiry is how long the revocation of v must live: at least until v itself
// expires; for a stamp or session without a record in the store (a session from
// before records), until a refresh token of it, of the longest refresh lifetime any
// server may issue, has expired. now stands in for a missing iat.
func (l Lifetimes) EntryExpiry(v token.Verified, now time.Time) blacklist.Expiry {
	start := v.IssuedAt
	if start.IsZero() {
		start = now
	}
	last := start.Add(l.longest())
	if v.ExpiresAt.After(last) {
		last = v.ExpiresAt
	}
	return blacklist.Expiry{Token: TokenEntryExpiry(v.ExpiresAt), Unrecorded: TokenEntryExpiry(last)}
}

// UserEntryKeep is how long a user's cutoff lives after it: every token issued before
// it, by a server of any lifetime, has expired by then.
func (l Lifetimes) UserEntryKeep() time.Duration {
	return l.longest() + token.MaxLeeway + ClockSkewMargin
}

// UserEntryExpiry is when a cutoff set at at may go (UserEntryKeep after it); also
// how long a revoked signing key is remembered.
func (l Lifetimes) UserEntryExpiry(at time.Time) time.Time {
	return at.Add(l.UserEntryKeep())
}

// RecordLifetime is how long a session's record lives after the iat of its latest
// pair: until that pair's refresh token has expired, plus the margins.
func (l Lifetimes) RecordLifetime() time.Duration {
	return l.Refresh + token.MaxLeeway + ClockSkewMargin
}

// longest is the longest lifetime a token of any server may have.
func (l Lifetimes) longest() time.Duration {
	return max(MaxRefreshLifetime, MaxAccessLifetime, l.Refresh, l.Access)
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
