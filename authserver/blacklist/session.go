package blacklist

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrReuse is returned by Rotate for a refresh token whose stamp is not its session's
// current one (nor the one just rotated away, within the grace period): the refresh
// token was used twice, and the whole session is revoked now.
var ErrReuse = errors.New("refresh token reused: session revoked")

// ErrSessionEnded is returned by Rotate for a session older than its maximum lifetime.
var ErrSessionEnded = errors.New("session reached its maximum lifetime")

// RateLimitedError is returned by Rotate for a session refreshed more often than its
// policy allows; RetryAfter says when it may be refreshed again.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many refreshes of this session: retry in %s", e.RetryAfter)
}

// SessionPolicy is how the store keeps one session.
type SessionPolicy struct {
	// RecordLifetime is how long a session's record lives after the iat of its latest
	// pair: the refresh lifetime plus the leeway cap and skew margin.
	RecordLifetime time.Duration
	// SingleSession makes a new session the user's only one: every other token of
	// the user issued up to it is refused.
	SingleSession bool
	// MarkerLifetime is how long the single-session marker lives after it: the
	// longest lifetime a token it ends may have, plus margins.
	MarkerLifetime time.Duration
	// Grace is how long after a rotation the refresh token just rotated away still
	// gets the successor's pair (a client retrying a refresh whose answer it lost),
	// while the successor has not been used; 0 makes every second use reuse.
	Grace time.Duration
	// RefreshLimit is how many refreshes (grace answers included) of one session are
	// allowed per RefreshWindow; 0 for no limit.
	RefreshLimit  int
	RefreshWindow time.Duration
	// MaxLifetime is the session's absolute lifetime from its issuance; 0 for none.
	MaxLifetime time.Duration
}

// Issue records a new session of sub (its user, session and stamp; its IssuedAt is
// ignored) and returns the iat its tokens must carry: now by Redis' clock, after the
// user's cutoff and after the store's data-loss cutoff, so that no server of this
// store refuses them. The store's generation is checked first when it changed. Store
// failures wrap ErrUnavailable; a Redis at its maxmemory wraps ErrStoreFull too.
func (s *Store) Issue(ctx context.Context, sub Subject, p SessionPolicy) (time.Time, error) {
	if !sub.HasSession() {
		return time.Time{}, errors.New("issuing a token without a session")
	}
	if err := s.followGeneration(ctx); err != nil {
		s.metrics.ops.WithLabelValues("issue", "error").Inc()
		return time.Time{}, err
	}
	ids := IDsOf(sub)
	k := s.keysOf(sub, ids)
	single := ""
	if p.SingleSession {
		single = "1"
	}
	args := []any{newNonce(), digestOf(ids.Stamp), s.cutoff.Load(), p.RecordLifetime.Milliseconds(), single,
		p.MarkerLifetime.Milliseconds(), s.RevocationChannel(), ids.User, digestOf(ids.Session)}
	reply, behind, err := s.script(ctx, issueLua, []string{k.Cutoff, k.Record, k.Only}, args, 3)
	switch {
	case errors.Is(err, ErrStoreFull):
		s.metrics.ops.WithLabelValues("issue", "full").Inc()
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		s.metrics.ops.WithLabelValues("issue", "error").Inc()
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case behind && p.SingleSession:
		// The end of the user's other sessions is a revocation: it is answered only
		// once a replica has it. A session's own record may be lost with the primary:
		// its tokens then verify as those of a session from before records.
		s.metrics.ops.WithLabelValues("issue", "replicas_behind").Inc()
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, ErrReplicasBehind)
	case behind:
		s.metrics.ops.WithLabelValues("issue", "replicas_behind").Inc()
	default:
		s.metrics.ops.WithLabelValues("issue", "added").Inc()
	}
	if p.SingleSession {
		s.published("issue", reply[1] == 1)
	}
	return time.Unix(reply[2], 0), nil
}

// Rotation is a refresh the store allowed.
type Rotation struct {
	// IssuedAt is the iat of the new pair (of the successor stamp).
	IssuedAt time.Time
	// SessionStart is when the session was issued (for a session from before records,
	// the iat of its refresh token at its first refresh since).
	SessionStart time.Time
}

// Rotate makes successor (the digest-to-be of the next stamp, see IDsOf) the current
// stamp of sub's session, which must hold sub's stamp, and revokes sub's stamp (its
// access token too). Errors: ErrReuse (the session is revoked now),
// ErrRevoked, ErrSessionEnded, *RateLimitedError, else wrapping
// ErrUnavailable. A rotation Redis made is never reported as failed: with too few
// replicas acknowledging it, it is still answered (and counted replicas_behind),
// since a client that retries it would be told of reuse.
func (s *Store) Rotate(ctx context.Context, sub Subject, successor string, p SessionPolicy, e Expiry) (Rotation, error) {
	if !sub.HasSession() {
		return Rotation{}, errors.New("rotating a token without a session")
	}
	if s.beforeCutoff(sub.IssuedAt) {
		s.metrics.ops.WithLabelValues("rotate", "exists").Inc()
		return Rotation{}, ErrRevoked
	}
	ids := IDsOf(sub)
	next := IDsOf(Subject{UserID: sub.UserID, SessionID: sub.SessionID, Stamp: successor})
	k := s.keysOf(sub, ids)
	args := []any{newNonce(), digestOf(ids.Stamp), digestOf(next.Stamp), sub.IssuedAt.Unix(), s.cutoff.Load(),
		p.RecordLifetime.Milliseconds(), int64(p.Grace.Seconds()), p.RefreshLimit, int64(p.RefreshWindow.Seconds()),
		int64(p.MaxLifetime.Seconds()), e.Token.UnixMilli(), s.RevocationChannel(), ids.Stamp, ids.Session,
		digestOf(ids.Session), e.Unrecorded.UnixMilli()}
	reply, behind, err := s.script(ctx, rotateLua, []string{k.Record, k.Cutoff, k.Only, k.Stamp, k.Session}, args, 5)
	if err != nil {
		s.metrics.ops.WithLabelValues("rotate", "error").Inc()
		return Rotation{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if behind {
		s.metrics.ops.WithLabelValues("rotate", "replicas_behind").Inc()
	}
	rot := Rotation{IssuedAt: time.Unix(reply[2], 0), SessionStart: time.Unix(reply[3], 0)}
	switch reply[0] {
	case 1:
		s.published("rotate", reply[1] == 1)
		s.metrics.ops.WithLabelValues("rotate", "added").Inc()
		return rot, nil
	case 3:
		// The presented refresh token had just been rotated away: the pair is its
		// successor's again.
		s.metrics.ops.WithLabelValues("rotate", "grace").Inc()
		return rot, nil
	case 2:
		s.published("rotate", reply[1] == 1)
		s.metrics.ops.WithLabelValues("rotate", "reuse").Inc()
		return Rotation{}, ErrReuse
	case 0:
		s.metrics.ops.WithLabelValues("rotate", "exists").Inc()
		return Rotation{}, ErrRevoked
	case 4:
		s.metrics.ops.WithLabelValues("rotate", "rate_limited").Inc()
		return Rotation{}, &RateLimitedError{RetryAfter: time.Duration(max(reply[4], 1)) * time.Second}
	case 5:
		s.metrics.ops.WithLabelValues("rotate", "session_ended").Inc()
		return Rotation{}, ErrSessionEnded
	}
	s.metrics.ops.WithLabelValues("rotate", "not_stored").Inc()
	return Rotation{}, fmt.Errorf("%w: %w", ErrUnavailable, ErrNotStored)
}
