package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// ErrRevoked is returned for a token that was logged out.
var ErrRevoked = errors.New("token is blacklisted")

// Store is the revocation store as the service uses it; blacklist.Store is the one
// implementation.
type Store interface {
	// Add revokes id until the given time; blacklist.ErrAlreadyBlacklisted when it
	// already was, an error wrapping blacklist.ErrUnavailable when the store is down.
	Add(ctx context.Context, id string, until time.Time) error
	// Contains reports whether id is revoked.
	Contains(ctx context.Context, id string) (bool, error)
}

// Config is what a Service composes.
type Config struct {
	Verifier *token.Verifier
	Store    Store
	// Cache, when not nil, answers Verify for tokens verified before; the store must
	// then publish revocations to the channel the cache follows.
	Cache *verifycache.Cache
}

// Service verifies and logs out tokens.
type Service struct {
	cfg Config
}

// New makes a Service of cfg.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// Verify checks raw as forward-auth does: the cache first, else signature, claims and
// the store. Errors: *token.InvalidError, token.ErrNoKeys, ErrRevoked, or the store's
// failure.
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
	listed, err := s.cfg.Store.Contains(ctx, v.BlacklistID)
	switch {
	case err != nil:
		return verifycache.Principal{}, err
	case listed:
		return verifycache.Principal{}, ErrRevoked
	}
	if cache != nil {
		cache.Add(ticket, raw, v)
	}
	return verifycache.PrincipalOf(v), nil
}

// Logout verifies raw and revokes it until it could no longer verify. It returns the
// verified token; errors as Verify's.
func (s *Service) Logout(ctx context.Context, raw string) (token.Verified, error) {
	v, err := s.cfg.Verifier.Verify(raw)
	if err != nil {
		return token.Verified{}, err
	}
	err = s.cfg.Store.Add(ctx, v.BlacklistID, v.ExpiresAt.Add(s.cfg.Verifier.Leeway()))
	already := errors.Is(err, blacklist.ErrAlreadyBlacklisted)
	if s.cfg.Cache != nil && (err == nil || already) {
		s.cfg.Cache.Revoke(v.BlacklistID)
	}
	switch {
	case err == nil:
		return v, nil
	case already:
		return token.Verified{}, ErrRevoked
	default:
		return token.Verified{}, err
	}
}
