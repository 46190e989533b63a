package blacklist

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// The first release's key layout: one key "<prefix>bl:<token id>" per logged-out
// token (value "1", expiring with the token), outside any user's hash tag, written by
// SET NX PXAT. Its servers had no sessions: a token of a session was revoked by its
// own id. Servers of this release read those keys too, for LegacyLayoutWindow after
// they first marked the store (the marker's LegacyUntil), so that an upgrade forgets
// no logout.

// legacyKey is the first release's key of a token id.
func (s *Store) legacyKey(tokenID string) string { return s.prefix + "bl:" + tokenID }

// readsLegacyLayout reports whether checks read the first release's entries at now.
func (s *Store) readsLegacyLayout(now time.Time) bool {
	return now.UnixMilli() < s.legacyUntil.Load()
}

// legacyRevoked reports whether the first release's entry of tokenID exists: a
// command of its own, for a Cluster, where the key lies in another slot than the
// user's.
func (s *Store) legacyRevoked(ctx context.Context, tokenID string) (bool, error) {
	cmd := redis.NewIntCmd(ctx, "exists", s.legacyKey(tokenID))
	if err := s.pipe.do(ctx, cmd, false); err != nil {
		return false, err
	}
	return cmd.Val() > 0, nil
}

// revokedBefore reports whether a token was logged out by a server of the first
// release, while its entries are read: logout and logout everywhere then answer
// "already blacklisted", as that server would have.
func (s *Store) revokedBefore(ctx context.Context, tokenID string) (bool, error) {
	if !s.readsLegacyLayout(time.Now()) {
		return false, nil
	}
	return s.legacyRevoked(ctx, tokenID)
}
