package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
)

// Store is an in-memory sessions.Store. Times are the clock's, in whole seconds as Redis'
// TIME gives them to the scripts; entries past their expiry are gone.
type Store struct {
	now func() time.Time

	mu sync.Mutex
	// entries are revoked token, stamp and session ids, with their expiry.
	entries map[string]time.Time
	// cutoffs and markers are by user id (blacklist.IDs.User).
	cutoffs map[string]stamped
	markers map[string]stamped
	// records are sessions' records, by session id (blacklist.IDs.Session).
	records map[string]record
	kids    map[string]time.Time
	down    bool
}

// stamped is a cutoff or a single-session marker: a second and when the entry goes.
type stamped struct {
	at      int64
	session string
	expires time.Time
}

// record is a session's record: its current stamp and refresh bookkeeping.
type record struct {
	stamp             string
	at, start, window int64
	count             int
	expires           time.Time
}

// New makes an empty store on now's clock (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, entries: map[string]time.Time{}, cutoffs: map[string]stamped{},
		markers: map[string]stamped{}, records: map[string]record{}, kids: map[string]time.Time{}}
}

// errDown is the failure of a store made unavailable by SetDown.
var errDown = fmt.Errorf("%w: the in-memory store is down", blacklist.ErrUnavailable)

// SetDown makes every call fail as an unreachable Redis does, until SetDown(false).
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Ping checks that the store answers.
func (s *Store) Ping(context.Context) error {
	_, unlock, err := s.lock()
	defer unlock()
	return err
}

// lock takes the store and reads the clock; err when it is down.
func (s *Store) lock() (time.Time, func(), error) {
	s.mu.Lock()
	if s.down {
		return time.Time{}, s.mu.Unlock, errDown
	}
	return s.now(), s.mu.Unlock, nil
}

func (s *Store) has(id string, now time.Time) bool {
	exp, ok := s.entries[id]
	return ok && now.Before(exp)
}

func (s *Store) cutoff(user string, now time.Time) (stamped, bool) {
	c, ok := s.cutoffs[user]
	return c, ok && now.Before(c.expires)
}

func (s *Store) record(session string, now time.Time) (record, bool) {
	r, ok := s.records[session]
	return r, ok && now.Before(r.expires)
}

// ended reports whether the user's cutoff or single-session marker revokes a token of
// session issued at iat.
func (s *Store) ended(ids blacklist.IDs, iat int64, now time.Time) bool {
	if c, ok := s.cutoff(ids.User, now); ok && iat <= c.at {
		return true
	}
	m, ok := s.markers[ids.User]
	return ok && now.Before(m.expires) && m.session != ids.Session && iat <= m.at
}

// CheckIDs reports whether sub is revoked, by the rules of blacklist.Store.CheckIDs.
func (s *Store) CheckIDs(_ context.Context, sub blacklist.Subject, ids blacklist.IDs) (bool, error) {
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return false, err
	}
	if s.has(ids.Token, now) || s.ended(ids, sub.IssuedAt.Unix(), now) {
		return true, nil
	}
	if ids.Stamp == "" {
		return false, nil
	}
	rec, ok := s.record(ids.Session, now)
	return s.has(ids.Stamp, now) || s.has(ids.Session, now) || ok && rec.stamp != ids.Stamp, nil
}

// RevokeIDs revokes sub's stamp, or its token without a session, as blacklist.Store does.
func (s *Store) RevokeIDs(_ context.Context, sub blacklist.Subject, ids blacklist.IDs, e blacklist.Expiry) error {
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return err
	}
	id, until := ids.Token, e.Token
	if ids.Stamp != "" {
		id = ids.Stamp
		if s.has(ids.Session, now) || s.has(ids.Token, now) {
			return blacklist.ErrRevoked
		}
	}
	if s.has(id, now) || s.ended(ids, sub.IssuedAt.Unix(), now) {
		return blacklist.ErrRevoked
	}
	if ids.Stamp != "" {
		last := e.Unrecorded
		if rec, ok := s.record(ids.Session, now); ok {
			if rec.stamp != ids.Stamp {
				return blacklist.ErrRevoked
			}
			last = rec.expires
		}
		until = later(until, last)
	}
	return s.put(id, until, now)
}

// put writes an entry, or nothing when its expiry has passed (blacklist.ErrNotStored).
func (s *Store) put(id string, until, now time.Time) error {
	if !now.Before(until) {
		return fmt.Errorf("%w: %w", blacklist.ErrUnavailable, blacklist.ErrNotStored)
	}
	s.entries[id] = until
	return nil
}

// RevokeSessionIDs revokes every token of sub's session until the given time.
func (s *Store) RevokeSessionIDs(_ context.Context, sub blacklist.Subject, ids blacklist.IDs, until time.Time) error {
	if !sub.HasSession() {
		return errors.New("revoking the session of a token without one")
	}
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return err
	}
	if s.has(ids.Session, now) || s.ended(ids, sub.IssuedAt.Unix(), now) {
		return blacklist.ErrRevoked
	}
	return s.put(ids.Session, until, now)
}

// CutOff raises the cutoff of sub's user to now, as blacklist.Store.CutOff does.
func (s *Store) CutOff(_ context.Context, sub blacklist.Subject, check bool, keep time.Duration) (time.Time, error) {
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return time.Time{}, err
	}
	ids := blacklist.IDsOf(sub)
	prev, had := s.cutoff(ids.User, now)
	at := now.Unix()
	if !check {
		if had && prev.at >= at {
			at = prev.at + 1
		}
	} else {
		iat := sub.IssuedAt.Unix()
		rec, recorded := s.record(ids.Session, now)
		if s.has(ids.Token, now) || ids.Stamp != "" && (s.has(ids.Stamp, now) || s.has(ids.Session, now) || recorded && rec.stamp != ids.Stamp) ||
			s.ended(ids, iat, now) {
			return time.Unix(prev.at, 0), blacklist.ErrRevoked
		}
		at = max(at, iat)
	}
	if had && prev.at >= at {
		return time.Unix(prev.at, 0), nil
	}
	s.cutoffs[ids.User] = stamped{at: at, expires: later(prev.expires, time.Unix(at, 0).Add(keep))}
	return time.Unix(at, 0), nil
}

// ReadCutoff reads the cutoff of userID; zero when there is none.
func (s *Store) ReadCutoff(_ context.Context, userID string) (time.Time, error) {
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return time.Time{}, err
	}
	if c, ok := s.cutoff(blacklist.IDsOf(blacklist.Subject{UserID: userID}).User, now); ok {
		return time.Unix(c.at, 0), nil
	}
	return time.Time{}, nil
}

// issueAfter is the first second at or after at that the user's cutoff does not revoke.
func (s *Store) issueAfter(at int64, user string, now time.Time) int64 {
	if c, ok := s.cutoff(user, now); ok && at <= c.at {
		return c.at + 1
	}
	return at
}

// Issue records a new session of sub and returns the iat of its tokens.
func (s *Store) Issue(_ context.Context, sub blacklist.Subject, p blacklist.SessionPolicy) (time.Time, error) {
	if !sub.HasSession() {
		return time.Time{}, errors.New("issuing a token without a session")
	}
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return time.Time{}, err
	}
	ids := blacklist.IDsOf(sub)
	if _, ok := s.record(ids.Session, now); ok {
		return time.Time{}, fmt.Errorf("%w: session record exists", blacklist.ErrUnavailable)
	}
	iat := s.issueAfter(now.Unix(), ids.User, now)
	m, marked := s.markers[ids.User]
	marked = marked && now.Before(m.expires)
	switch {
	case p.SingleSession:
		at := iat
		if marked {
			at = max(at, m.at)
		}
		s.markers[ids.User] = stamped{at: at, session: ids.Session, expires: later(m.expires, time.Unix(at, 0).Add(p.MarkerLifetime))}
	case marked && iat <= m.at:
		iat = m.at + 1
	}
	s.records[ids.Session] = record{stamp: ids.Stamp, at: iat, start: iat, window: iat, expires: time.Unix(iat, 0).Add(p.RecordLifetime)}
	return time.Unix(iat, 0), nil
}

// Rotate exchanges a refresh token of sub's session for successor's stamp, as
// blacklist.Store.Rotate does: grace, reuse, rate limit and maximum lifetime included.
func (s *Store) Rotate(_ context.Context, sub blacklist.Subject, successor string, p blacklist.SessionPolicy, e blacklist.Expiry) (blacklist.Rotation, error) {
	if !sub.HasSession() {
		return blacklist.Rotation{}, errors.New("rotating a token without a session")
	}
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return blacklist.Rotation{}, err
	}
	ids := blacklist.IDsOf(sub)
	next := blacklist.IDsOf(blacklist.Subject{UserID: sub.UserID, SessionID: sub.SessionID, Stamp: successor})
	iat := sub.IssuedAt.Unix()
	if s.has(ids.Session, now) || s.ended(ids, iat, now) {
		return blacklist.Rotation{}, blacklist.ErrRevoked
	}
	sec := now.Unix()
	rec, recorded := s.record(ids.Session, now)
	reuse, grace := s.has(ids.Stamp, now), false
	if recorded && !reuse {
		if g := int64(p.Grace.Seconds()); rec.stamp == next.Stamp && g > 0 && sec-rec.at < g {
			grace = true
		} else if rec.stamp != ids.Stamp {
			reuse = true
		}
	}
	if reuse {
		last := e.Unrecorded
		if recorded {
			last = rec.expires
		}
		if err := s.put(ids.Session, later(e.Token, last), now); err != nil {
			return blacklist.Rotation{}, err
		}
		return blacklist.Rotation{}, blacklist.ErrReuse
	}
	if !recorded {
		rec = record{start: iat, window: sec}
	}
	if m := int64(p.MaxLifetime.Seconds()); m > 0 && sec >= rec.start+m {
		return blacklist.Rotation{}, blacklist.ErrSessionEnded
	}
	window := int64(p.RefreshWindow.Seconds())
	if sec-rec.window >= window {
		rec.window, rec.count = sec, 0
	}
	if p.RefreshLimit > 0 && rec.count >= p.RefreshLimit {
		return blacklist.Rotation{}, &blacklist.RateLimitedError{RetryAfter: time.Duration(max(rec.window+window-sec, 1)) * time.Second}
	}
	rec.count++
	if grace {
		s.records[ids.Session] = rec
		return blacklist.Rotation{IssuedAt: time.Unix(rec.at, 0), SessionStart: time.Unix(rec.start, 0)}, nil
	}
	rec.stamp, rec.at = next.Stamp, s.issueAfter(sec, ids.User, now)
	rec.expires = later(rec.expires, time.Unix(rec.at, 0).Add(p.RecordLifetime))
	s.records[ids.Session] = rec
	return blacklist.Rotation{IssuedAt: time.Unix(rec.at, 0), SessionStart: time.Unix(rec.start, 0)}, nil
}

// RevokeKeys records kids as revoked signing keys until the given time (the later of
// two revocations of one kid).
func (s *Store) RevokeKeys(_ context.Context, kids []string, until time.Time) error {
	_, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return err
	}
	for _, k := range kids {
		s.kids[k] = later(s.kids[k], until)
	}
	return nil
}

// RevokedKeys lists the signing keys revoked and not yet past their expiry.
func (s *Store) RevokedKeys(context.Context) ([]string, error) {
	now, unlock, err := s.lock()
	defer unlock()
	if err != nil {
		return nil, err
	}
	var out []string
	for k, until := range s.kids {
		if now.Before(until) {
			out = append(out, k)
		}
	}
	return out, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
