package blacklist

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Expiry says how long a revocation entry must live, by what the writer knows.
type Expiry struct {
	// Token is when the presented token itself can no longer verify (its exp plus the
	// leeway cap and skew margin): no entry that revokes it goes earlier.
	Token time.Time
	// Unrecorded is when no token of a stamp or session verifies any more, for a
	// session without a record (one started before records existed): computed from
	// the longest refresh lifetime any issuer may have. A session with a record lives
	// as its record does: until its latest refresh token has expired.
	Unrecorded time.Time
}

// Revoke revokes sub: its stamp when it has a session (every token of that login,
// access and refresh, every encoding), else the token alone; and publishes the
// revocation on RevocationChannel in the same script. It returns
// ErrRevoked when sub was revoked before (a stamp that its session has
// rotated away included), an error wrapping ErrUnavailable when Redis did not answer,
// stored nothing or, with StoreOptions.ReplicaAcks, too few replicas acknowledged the
// write.
func (s *Store) Revoke(ctx context.Context, sub Subject, e Expiry) error {
	return s.RevokeIDs(ctx, sub, IDsOf(sub), e)
}

// RevokeIDs is Revoke for a caller that has IDsOf(sub) already.
func (s *Store) RevokeIDs(ctx context.Context, sub Subject, ids IDs, e Expiry) error {
	if s.beforeCutoff(sub.IssuedAt) {
		s.metrics.ops.WithLabelValues("add", "exists").Inc()
		return ErrRevoked
	}
	if before, err := s.revokedBefore(ctx, ids.Token); err != nil || before {
		return s.legacyOutcome("add", err)
	}
	k := s.keysOf(sub, ids)
	keys := []string{k.Token, k.Cutoff, k.Only}
	msg := ids.Token
	if k.Stamp != "" {
		keys = []string{k.Stamp, k.Cutoff, k.Only, k.Record, k.Session, k.Token}
		msg = ids.Stamp
	}
	args := []any{newNonce(), e.Token.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), msg,
		digestOf(ids.Stamp), digestOf(ids.Session), e.Unrecorded.UnixMilli()}
	reply, behind, err := s.script(ctx, revokeLua, keys, args, 2)
	var code int64
	if err == nil {
		code = reply[0]
	}
	if err = s.outcome("add", code, err == nil && reply[1] == 1, behind, err); err != nil {
		return err
	}
	if code == 0 {
		return ErrRevoked
	}
	return nil
}

// CutOff revokes every token of sub's user issued up to now by Redis' clock (and sub
// itself, when check is set, even if it was issued later), and publishes it; the
// cutoff lives keep beyond itself. When check is true, sub's own revocation is
// checked first: ErrRevoked when it was revoked. It returns the user's
// cutoff after the call.
func (s *Store) CutOff(ctx context.Context, sub Subject, check bool, keep time.Duration) (time.Time, error) {
	if check && s.beforeCutoff(sub.IssuedAt) {
		s.metrics.ops.WithLabelValues("cutoff", "exists").Inc()
		return time.Unix(s.cutoff.Load()-1, 0), ErrRevoked
	}
	ids := IDsOf(sub)
	if check {
		if before, err := s.revokedBefore(ctx, ids.Token); err != nil || before {
			return time.Time{}, s.legacyOutcome("cutoff", err)
		}
	}
	k := s.keysOf(sub, ids)
	keys := []string{k.Cutoff}
	iat := ""
	if check {
		keys = append(keys, k.Only, k.Cutoff, k.Token)
		if k.Stamp != "" {
			keys = []string{k.Cutoff, k.Only, k.Record, k.Token, k.Stamp, k.Session}
		}
		iat = strconv.FormatInt(sub.IssuedAt.Unix(), 10)
	}
	args := []any{newNonce(), keep.Milliseconds(), iat, s.RevocationChannel(), ids.User, digestOf(ids.Stamp), digestOf(ids.Session)}
	reply, behind, err := s.script(ctx, cutoffLua, keys, args, 3)
	var code int64
	if err == nil {
		code = reply[0]
	}
	if err = s.outcome("cutoff", code, err == nil && reply[1] == 1, behind, err); err != nil {
		return time.Time{}, err
	}
	if code == 0 {
		return time.Unix(reply[2], 0), ErrRevoked
	}
	return time.Unix(reply[2], 0), nil
}

// legacyOutcome is the answer to a logout of a token that the first release's layout
// revoked (err nil), or whose entry there could not be read.
func (s *Store) legacyOutcome(op string, err error) error {
	if err != nil {
		s.metrics.ops.WithLabelValues(op, "error").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.metrics.ops.WithLabelValues(op, "exists").Inc()
	return ErrRevoked
}

// RevokeSessionIDs revokes every token of sub's session (every stamp, access and refresh)
// until the given time and publishes the session's id, through the logout's script with the
// session's entry as the one it writes (RFC 7009 revocation of a refresh token):
// ErrRevoked when the session, or every token of the user issued up to sub, was
// revoked before. ids are IDsOf(sub); sub must have a session.
func (s *Store) RevokeSessionIDs(ctx context.Context, sub Subject, ids IDs, until time.Time) error {
	if !sub.HasSession() {
		return fmt.Errorf("revoking the session of a token without one")
	}
	if s.beforeCutoff(sub.IssuedAt) {
		s.metrics.ops.WithLabelValues("add", "exists").Inc()
		return ErrRevoked
	}
	k := s.keysOf(sub, ids)
	args := []any{newNonce(), until.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), ids.Session,
		"", digestOf(ids.Session), until.UnixMilli()}
	reply, behind, err := s.script(ctx, revokeLua, []string{k.Session, k.Cutoff, k.Only}, args, 2)
	var code int64
	if err == nil {
		code = reply[0]
	}
	if err = s.outcome("add", code, err == nil && reply[1] == 1, behind, err); err != nil {
		return err
	}
	if code == 0 {
		return ErrRevoked
	}
	return nil
}
