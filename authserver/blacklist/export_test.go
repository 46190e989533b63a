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

// Until is the expiry of an entry that lives until t, whatever it revokes.
func Until(t time.Time) Expiry { return Expiry{Token: t, Unrecorded: t} }

// AddUnbatched is Revoke of Tok(id) without the store's batching: one round trip per
// call through go-redis's connection pool. Benchmarks compare the two.
func AddUnbatched(ctx context.Context, s *Store, id string, until time.Time) error {
	sub := Tok(id)
	k := s.keysOf(sub, IDsOf(sub))
	return redis.NewScript(revokeLua.src).Run(ctx, s.client, []string{k.Token, k.Cutoff, k.Only},
		newNonce(), until.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), id, "", "", until.UnixMilli()).Err()
}

// RecordOf is the Redis key of the record of sub's session.
func (s *Store) RecordOf(sub Subject) string { return s.keysOf(sub, IDsOf(sub)).Record }

// CutOffWithNonce runs the cutoff script for sub (its revocation checked) with a
// nonce of the caller: twice with one nonce is what a client's blind resend does.
func (s *Store) CutOffWithNonce(ctx context.Context, sub Subject, nonce string, keep time.Duration) (code, cutoff int64, err error) {
	ids := IDsOf(sub)
	k := s.keysOf(sub, ids)
	keys := []string{k.Cutoff, k.Only, k.Cutoff, k.Token}
	if k.Stamp != "" {
		keys = []string{k.Cutoff, k.Only, k.Record, k.Token, k.Stamp, k.Session}
	}
	reply, _, err := s.script(ctx, cutoffLua, keys, []any{nonce, keep.Milliseconds(), sub.IssuedAt.Unix(),
		s.RevocationChannel(), ids.User, digestOf(ids.Stamp), digestOf(ids.Session)}, 3)
	if err != nil {
		return 0, 0, err
	}
	return reply[0], reply[2], nil
}

// NextGeneration is nextGeneration's decision: the generation adopted, whether it is
// written, whether a loss was found.
func NextGeneration(known Generation, marker *Generation, now time.Time) (Generation, bool, bool) {
	step := nextGeneration(known, marker, now)
	return step.Adopt, step.Write, step.Lost
}

// GenerationAt is a generation created at t by a server of this release.
func GenerationAt(t time.Time, notBefore int64, previous string) Generation {
	g := newGeneration(t, notBefore, previous)
	g.KeyLayout = KeyLayout
	return g
}
