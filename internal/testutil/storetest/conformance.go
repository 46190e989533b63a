package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
)

// Store is what the suite exercises: the sessions service's store and the listing of
// revoked signing keys that followers read.
type Store interface {
	sessions.Store
	RevokedKeys(ctx context.Context) ([]string, error)
}

// The cases of the suite, each run on a fresh store.
var cases = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"RevokeIDs/TokenWithoutSessionIsRevokedOnce", revokeTokenOnce},
	{"RevokeIDs/StampRevokesEveryTokenOfItsLogin", revokeStamp},
	{"RevokeIDs/PastExpiryStoresNothing", revokePastExpiry},
	{"CutOff/RevokesTheUsersEarlierTokensOnly", cutOffEarlier},
	{"CutOff/CheckedTokenRevokedBeforeIsRevoked", cutOffChecked},
	{"CutOff/SecondCutoffMovesPastTheFirst", cutOffTwice},
	{"ReadCutoff/NoneIsZero", readCutoffNone},
	{"Issue/IssuedAfterTheUsersCutoff", issueAfterCutoff},
	{"Issue/SingleSessionEndsTheUsersOtherSessions", issueSingleSession},
	{"Rotate/SuccessorVerifiesReplacedStampIsRevoked", rotateReplaces},
	{"Rotate/ReplacedStampPresentedAgainIsReuse", rotateReuse},
	{"Rotate/ReplacedStampWithinGraceGetsTheSuccessor", rotateGrace},
	{"Rotate/RefreshesBeyondTheLimitAreRateLimited", rotateRateLimited},
	{"Rotate/SessionPastItsMaximumLifetimeEnds", rotateSessionEnded},
	{"Rotate/UserCutOffIsRevoked", rotateCutOff},
	{"RevokeSessionIDs/RevokesEveryStampOfTheSession", revokeSession},
	{"RevokeKeys/ListedUntilTheyExpire", revokeKeys},
}

// Run runs every case on a store that open makes, fresh for each.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// policy is a session policy with lifetimes as the sessions service sets them.
func policy() blacklist.SessionPolicy {
	l := sessions.Lifetimes{}.WithDefaults()
	return blacklist.SessionPolicy{RecordLifetime: l.RecordLifetime(), MarkerLifetime: l.UserEntryKeep(), RefreshWindow: time.Minute}
}

func token(user, id string, iat time.Time) blacklist.Subject {
	return blacklist.Subject{UserID: user, TokenID: id, IssuedAt: iat}
}

func ofSession(user, id, session, stamp string, iat time.Time) blacklist.Subject {
	return blacklist.Subject{UserID: user, TokenID: id, SessionID: session, Stamp: stamp, IssuedAt: iat}
}

func hour() blacklist.Expiry {
	at := time.Now().Add(time.Hour)
	return blacklist.Expiry{Token: at, Unrecorded: at}
}

func revoked(t *testing.T, s Store, sub blacklist.Subject) bool {
	t.Helper()
	r, err := s.CheckIDs(t.Context(), sub, blacklist.IDsOf(sub))
	if err != nil {
		t.Fatalf("CheckIDs: %v", err)
	}
	return r
}

func revokeTokenOnce(t *testing.T, s Store) {
	sub := token("u-1", "t-1", time.Now())
	if revoked(t, s, sub) {
		t.Fatal("a token nothing revoked is revoked")
	}
	if err := s.RevokeIDs(t.Context(), sub, blacklist.IDsOf(sub), hour()); err != nil {
		t.Fatalf("first revocation: %v", err)
	}
	if !revoked(t, s, sub) {
		t.Error("a revoked token is not revoked")
	}
	if err := s.RevokeIDs(t.Context(), sub, blacklist.IDsOf(sub), hour()); !errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("second revocation: %v, want ErrRevoked", err)
	}
	if other := token("u-1", "t-2", time.Now()); revoked(t, s, other) {
		t.Error("another token of the user is revoked")
	}
}

func revokeStamp(t *testing.T, s Store) {
	now := time.Now()
	access, refresh := ofSession("u-1", "a", "s-1", "st-1", now), ofSession("u-1", "r", "s-1", "st-1", now)
	if err := s.RevokeIDs(t.Context(), access, blacklist.IDsOf(access), hour()); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, s, refresh) {
		t.Error("the refresh token of a logged-out stamp is not revoked")
	}
	if revoked(t, s, ofSession("u-1", "b", "s-2", "st-2", now)) {
		t.Error("a token of another session is revoked")
	}
	if err := s.RevokeIDs(t.Context(), refresh, blacklist.IDsOf(refresh), hour()); !errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("logging out the stamp again: %v, want ErrRevoked", err)
	}
}

func revokePastExpiry(t *testing.T, s Store) {
	sub := token("u-1", "t-1", time.Now())
	past := time.Now().Add(-time.Minute)
	err := s.RevokeIDs(t.Context(), sub, blacklist.IDsOf(sub), blacklist.Expiry{Token: past, Unrecorded: past})
	if !errors.Is(err, blacklist.ErrUnavailable) || !errors.Is(err, blacklist.ErrNotStored) {
		t.Errorf("revocation expiring in the past: %v, want ErrUnavailable and ErrNotStored", err)
	}
	if revoked(t, s, sub) {
		t.Error("a revocation that was not stored revokes")
	}
}

func cutOffEarlier(t *testing.T, s Store) {
	before := token("u-1", "t-1", time.Now().Add(-10*time.Second))
	cutoff, err := s.CutOff(t.Context(), blacklist.Subject{UserID: "u-1"}, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(cutoff); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("cutoff %v is not now", cutoff)
	}
	if !revoked(t, s, before) {
		t.Error("a token issued before the cutoff is not revoked")
	}
	if revoked(t, s, token("u-1", "t-2", cutoff.Add(time.Second))) {
		t.Error("a token issued after the cutoff is revoked")
	}
	if revoked(t, s, token("u-2", "t-3", before.IssuedAt)) {
		t.Error("another user's token is revoked")
	}
	if got, err := s.ReadCutoff(t.Context(), "u-1"); err != nil || !got.Equal(cutoff) {
		t.Errorf("ReadCutoff = %v, %v; want %v", got, err, cutoff)
	}
}

func cutOffChecked(t *testing.T, s Store) {
	sub := ofSession("u-1", "a", "s-1", "st-1", time.Now())
	if err := s.RevokeIDs(t.Context(), sub, blacklist.IDsOf(sub), hour()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CutOff(t.Context(), sub, true, time.Hour); !errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("logout everywhere with a logged-out token: %v, want ErrRevoked", err)
	}
	fresh := ofSession("u-1", "b", "s-2", "st-2", time.Now().Add(time.Minute))
	cutoff, err := s.CutOff(t.Context(), fresh, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked(t, s, fresh) || cutoff.Before(fresh.IssuedAt.Truncate(time.Second)) {
		t.Errorf("the presenting token (issued after now) is not covered by the cutoff %v", cutoff)
	}
}

func cutOffTwice(t *testing.T, s Store) {
	first, err := s.CutOff(t.Context(), blacklist.Subject{UserID: "u-1"}, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.CutOff(t.Context(), blacklist.Subject{UserID: "u-1"}, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !second.After(first) {
		t.Errorf("second cutoff %v is not after the first %v", second, first)
	}
}

func readCutoffNone(t *testing.T, s Store) {
	if got, err := s.ReadCutoff(t.Context(), "u-nobody"); err != nil || !got.IsZero() {
		t.Errorf("ReadCutoff of a user without one = %v, %v", got, err)
	}
}

func issueAfterCutoff(t *testing.T, s Store) {
	cutoff, err := s.CutOff(t.Context(), blacklist.Subject{UserID: "u-1"}, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sub := ofSession("u-1", "", "s-1", "st-1", time.Time{})
	iat, err := s.Issue(t.Context(), sub, policy())
	if err != nil {
		t.Fatal(err)
	}
	if !iat.After(cutoff) {
		t.Errorf("iat %v is not after the cutoff %v", iat, cutoff)
	}
	if sub.TokenID, sub.IssuedAt = "a", iat; revoked(t, s, sub) {
		t.Error("a token of the new session is revoked")
	}
}

func issueSingleSession(t *testing.T, s Store) {
	first := ofSession("u-1", "", "s-1", "st-1", time.Time{})
	iat, err := s.Issue(t.Context(), first, policy())
	if err != nil {
		t.Fatal(err)
	}
	first.TokenID, first.IssuedAt = "a", iat
	only := policy()
	only.SingleSession = true
	second := ofSession("u-1", "", "s-2", "st-2", time.Time{})
	if second.IssuedAt, err = s.Issue(t.Context(), second, only); err != nil {
		t.Fatal(err)
	}
	second.TokenID = "b"
	if !revoked(t, s, first) {
		t.Error("single-session issuance left the user's earlier session valid")
	}
	if revoked(t, s, second) {
		t.Error("the single session itself is revoked")
	}
}

// issued starts session s-1 of u-1 and returns its refresh token's subject.
func issued(t *testing.T, s Store, p blacklist.SessionPolicy) blacklist.Subject {
	t.Helper()
	sub := ofSession("u-1", "", "s-1", "st-1", time.Time{})
	iat, err := s.Issue(t.Context(), sub, p)
	if err != nil {
		t.Fatal(err)
	}
	sub.TokenID, sub.IssuedAt = "r-1", iat
	return sub
}

func rotateReplaces(t *testing.T, s Store) {
	sub := issued(t, s, policy())
	rot, err := s.Rotate(t.Context(), sub, "st-2", policy(), hour())
	if err != nil {
		t.Fatal(err)
	}
	if rot.IssuedAt.Before(sub.IssuedAt) || !rot.SessionStart.Equal(sub.IssuedAt) {
		t.Errorf("rotation = %+v, want iat at or after %v and the session's start", rot, sub.IssuedAt)
	}
	if !revoked(t, s, sub) {
		t.Error("the replaced stamp is not revoked")
	}
	if revoked(t, s, ofSession("u-1", "r-2", "s-1", "st-2", rot.IssuedAt)) {
		t.Error("the successor stamp is revoked")
	}
}

func rotateReuse(t *testing.T, s Store) {
	sub := issued(t, s, policy())
	if _, err := s.Rotate(t.Context(), sub, "st-2", policy(), hour()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(t.Context(), sub, "st-2", policy(), hour()); !errors.Is(err, blacklist.ErrReuse) {
		t.Fatalf("second use of a refresh token without grace: %v, want ErrReuse", err)
	}
	if !revoked(t, s, ofSession("u-1", "r-2", "s-1", "st-2", time.Now())) {
		t.Error("reuse left the session's current stamp valid")
	}
}

func rotateGrace(t *testing.T, s Store) {
	p := policy()
	p.Grace = 30 * time.Second
	sub := issued(t, s, p)
	first, err := s.Rotate(t.Context(), sub, "st-2", p, hour())
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Rotate(t.Context(), sub, "st-2", p, hour())
	if err != nil || !again.IssuedAt.Equal(first.IssuedAt) {
		t.Errorf("retry within the grace period = %+v, %v; want the successor's iat %v", again, err, first.IssuedAt)
	}
}

func rotateRateLimited(t *testing.T, s Store) {
	p := policy()
	p.RefreshLimit = 1
	sub := issued(t, s, p)
	rot, err := s.Rotate(t.Context(), sub, "st-2", p, hour())
	if err != nil {
		t.Fatal(err)
	}
	next := ofSession("u-1", "r-2", "s-1", "st-2", rot.IssuedAt)
	_, err = s.Rotate(t.Context(), next, "st-3", p, hour())
	var limited *blacklist.RateLimitedError
	if !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > time.Minute {
		t.Errorf("second refresh in the window: %v, want a RateLimitedError within a minute", err)
	}
	if revoked(t, s, next) {
		t.Error("a rate-limited refresh revoked the current stamp")
	}
}

func rotateSessionEnded(t *testing.T, s Store) {
	p := policy()
	p.MaxLifetime = time.Hour
	old := ofSession("u-1", "r-1", "s-1", "st-1", time.Now().Add(-2*time.Hour))
	if _, err := s.Rotate(t.Context(), old, "st-2", p, hour()); !errors.Is(err, blacklist.ErrSessionEnded) {
		t.Errorf("refresh of a session older than its maximum lifetime: %v, want ErrSessionEnded", err)
	}
}

func rotateCutOff(t *testing.T, s Store) {
	sub := issued(t, s, policy())
	if _, err := s.CutOff(t.Context(), blacklist.Subject{UserID: "u-1"}, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(t.Context(), sub, "st-2", policy(), hour()); !errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("refresh after the user's cutoff: %v, want ErrRevoked", err)
	}
}

func revokeSession(t *testing.T, s Store) {
	sub := issued(t, s, policy())
	ids := blacklist.IDsOf(sub)
	if err := s.RevokeSessionIDs(t.Context(), sub, ids, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, s, sub) || !revoked(t, s, ofSession("u-1", "x", "s-1", "st-9", sub.IssuedAt)) {
		t.Error("a stamp of the revoked session is not revoked")
	}
	if err := s.RevokeSessionIDs(t.Context(), sub, ids, time.Now().Add(time.Hour)); !errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("revoking the session again: %v, want ErrRevoked", err)
	}
}

func revokeKeys(t *testing.T, s Store) {
	if err := s.RevokeKeys(t.Context(), []string{"kid-1"}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKeys(t.Context(), []string{"kid-2"}, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	kids, err := s.RevokedKeys(t.Context())
	if err != nil || !slices.Equal(kids, []string{"kid-1"}) {
		t.Errorf("RevokedKeys = %v, %v; want kid-1 alone (kid-2 expired)", kids, err)
	}
}
