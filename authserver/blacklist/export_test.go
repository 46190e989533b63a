package blacklist

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tok is a subject without a session, revoked by its token id alone, of one fixed user.
func Tok(id string) Subject { return Subject{UserID: "test-user", TokenID: id, IssuedAt: time.Now()} }

// KeyOf is the Redis key a revocation of sub writes: its stamp's when it has a
// session, else its token's.
func (s *Store) KeyOf(sub Subject) string {
	k := s.keysOf(sub, IDsOf(sub))
	if k.Stamp != "" {
		return k.Stamp
	}
	return k.Token
}

// AddUnbatched is Revoke of Tok(id) without the store's batching: one round trip per
// call through go-redis's connection pool. Benchmarks compare the two.
func AddUnbatched(ctx context.Context, s *Store, id string, until time.Time) error {
	sub := Tok(id)
	k := s.keysOf(sub, IDsOf(sub))
	return s.client.Process(ctx, redis.NewCmd(ctx, "eval", revokeScript, 2, k.Token, k.Cutoff,
		newNonce(), until.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), id))
}

// NextGeneration is nextGeneration's decision: the generation adopted, whether it is
// written, whether a loss was found.
func NextGeneration(known Generation, marker *Generation, now time.Time) (Generation, bool, bool) {
	step := nextGeneration(known, marker, now)
	return step.Adopt, step.Write, step.Lost
}

// GenerationAt is a generation created at t.
func GenerationAt(t time.Time, notBefore int64, previous string) Generation {
	return newGeneration(t, notBefore, previous)
}
