package blacklist

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Check reports whether sub is revoked: its token, stamp or session entry exists, its
// stamp is not its session's current one, it was issued at or before its user's
// cutoff, or single-session issuance ended it. One MGET, one round trip. An error
// wraps ErrUnavailable.
func (s *Store) Check(ctx context.Context, sub Subject) (bool, error) {
	return s.CheckIDs(ctx, sub, IDsOf(sub))
}

// CheckIDs is Check for a caller that has IDsOf(sub) already (the verify path, which
// also indexes its cache by them): each id is a SHA-256 digest, made once per check.
func (s *Store) CheckIDs(ctx context.Context, sub Subject, ids IDs) (bool, error) {
	if s.beforeCutoff(sub.IssuedAt) {
		s.metrics.checkListed.Inc()
		return true, nil
	}
	k := s.keysOf(sub, ids)
	legacy := s.readsLegacyLayout(time.Now())
	args := make([]any, 4, 8)
	args[0], args[1], args[2], args[3] = "mget", k.Token, k.Cutoff, k.Only
	if k.Stamp != "" {
		args = append(args, k.Stamp, k.Session, k.Record)
	}
	if legacy && !s.cluster {
		args = append(args, s.legacyKey(ids.Token))
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	err := s.pipe.do(ctx, cmd, false)
	revoked := err == nil && revokedBy(cmd.Val(), factsOf(sub, ids))
	if err == nil && !revoked && legacy && s.cluster {
		revoked, err = s.legacyRevoked(ctx, ids.Token)
	}
	switch {
	case err != nil:
		s.metrics.checkError.Inc()
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case revoked:
		s.metrics.checkListed.Inc()
	default:
		s.metrics.checkClear.Inc()
	}
	return revoked, nil
}

// facts is what revokedBy compares the stored values with.
type facts struct {
	// iat is the token's iat in Unix seconds.
	iat int64
	// hasSession says that the reply holds the stamp, session and record entries.
	hasSession bool
	// stamp and session are the digests of the token's stamp and session ("" for a
	// token without a session).
	stamp, session string
}

func factsOf(sub Subject, ids IDs) facts {
	return facts{iat: sub.IssuedAt.Unix(), hasSession: ids.Stamp != "", stamp: digestOf(ids.Stamp), session: digestOf(ids.Session)}
}

// revokedBy decides Check from the MGET reply: token, cutoff and single-session
// marker; then, for a token of a session, its stamp's entry, its session's entry and
// its session's record; then the token's entry of the previous layout, when read. A
// value that does not parse revokes (the store fails closed).
func revokedBy(vals []any, f facts) bool {
	at := func(i int) (string, bool) {
		if i >= len(vals) {
			return "", false
		}
		v, ok := vals[i].(string)
		return v, ok
	}
	if _, ok := at(0); ok {
		return true
	}
	if c, ok := at(1); ok && !issuedAfter(f.iat, c) {
		return true
	}
	if o, ok := at(2); ok && endedBySingleSession(o, f.session, f.iat) {
		return true
	}
	next := 3
	if f.hasSession {
		if _, ok := at(3); ok {
			return true
		}
		if _, ok := at(4); ok {
			return true
		}
		if r, ok := at(5); ok && currentStamp(r) != f.stamp {
			return true
		}
		next = 6
	}
	_, legacy := at(next)
	return legacy
}

// issuedAfter reports whether a token issued at iat came after a cutoff entry
// ("<unix seconds> <nonce>").
func issuedAfter(iat int64, cutoff string) bool {
	at, _, _ := strings.Cut(cutoff, " ")
	n, err := strconv.ParseInt(at, 10, 64)
	return err == nil && iat > n
}

// endedBySingleSession reports whether the user's single-session marker ("<unix
// seconds> <session digest> <nonce>") ends a token of session issued at iat: every
// token of another session issued up to the marker's time.
func endedBySingleSession(marker, session string, iat int64) bool {
	f := strings.Fields(marker)
	if len(f) < 2 {
		return true
	}
	at, err := strconv.ParseInt(f[0], 10, 64)
	return err != nil || f[1] != session && iat <= at
}

// currentStamp is the stamp digest a session's record holds ("<stamp digest> <iat>
// <nonce> <start> <window> <count>").
func currentStamp(record string) string {
	stamp, _, _ := strings.Cut(record, " ")
	return stamp
}

// ReadCutoff reads the cutoff of userID (every token of the user issued at or before it
// is revoked); zero when the user has none. An error wraps ErrUnavailable.
func (s *Store) ReadCutoff(ctx context.Context, userID string) (time.Time, error) {
	sub := Subject{UserID: userID}
	cmd := redis.NewStringCmd(ctx, "get", s.keysOf(sub, IDsOf(sub)).Cutoff)
	err := s.pipe.do(ctx, cmd, false)
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	at, _, _ := strings.Cut(cmd.Val(), " ")
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed cutoff %q", ErrUnavailable, cmd.Val())
	}
	return time.Unix(n, 0), nil
}
