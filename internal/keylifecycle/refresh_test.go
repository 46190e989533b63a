package keylifecycle

import (
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// withRefresh is policy with refresh tokens that outlive two rotation intervals.
var withRefresh = func() Policy {
	p := policy
	p.RefreshLifetime = 48 * time.Hour
	return p
}()

// refreshRetention is how long withRefresh keeps a retired key in the Secret.
const refreshRetention = DefaultMinPublishTime + 48*time.Hour + 30*time.Second

func TestNext_RetiredKeyLeavesThePublishedSetAtExpiresAtAndTheSecretAtRefreshExpiresAt(t *testing.T) {
	rotatedAt := t0.Add(withRefresh.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: withRefresh, Now: rotatedAt}).Set
	retired := s.Keys[0]
	if retired.State != keydomain.StateRetired || !retired.ExpiresAt.Equal(rotatedAt.Add(retention)) || !retired.RefreshExpiresAt.Equal(rotatedAt.Add(refreshRetention)) {
		t.Fatalf("retired key %s expires %v refresh-expires %v; want %s and %s", retired.State, retired.ExpiresAt, retired.RefreshExpiresAt, rotatedAt.Add(retention), rotatedAt.Add(refreshRetention))
	}

	// A second before its access window closes the key is published; the plan comes back
	// exactly when it closes, so the projection and the JWKS drop it on time.
	before := next(t, Request{Current: s, Policy: withRefresh, Now: rotatedAt.Add(retention - time.Second)})
	if len(before.Set.Published(rotatedAt.Add(retention-time.Second)).Keys) != 3 || before.RequeueAfter != time.Second {
		t.Fatalf("a second before expiresAt: %d published, RequeueAfter %s", len(before.Set.Published(rotatedAt.Add(retention-time.Second)).Keys), before.RequeueAfter)
	}
	closed := rotatedAt.Add(retention)
	at := next(t, Request{Current: roundTrip(t, s), Policy: withRefresh, Now: closed})
	if at.Changed || len(at.Events) != 0 || states(at.Set) != "retired active next" {
		t.Fatalf("at expiresAt: Changed %v events %s states %q; want the key kept for refresh", at.Changed, eventTypes(at.Events), states(at.Set))
	}
	if pub := at.Set.Published(closed); len(pub.Keys) != 2 {
		t.Errorf("at expiresAt %d keys are published, want the active and next only", len(pub.Keys))
	}
	// The passed expiresAt is not a reason to come back: the next rotation is.
	if want := t0.Add(2 * withRefresh.RotationInterval).Sub(closed); at.RequeueAfter != want {
		t.Errorf("RequeueAfter after expiresAt = %s, want the next rotation in %s", at.RequeueAfter, want)
	}

	// A second rotation retires a second key; the first stays until its refresh deadline.
	second := next(t, Request{Current: at.Set, Policy: withRefresh, Now: t0.Add(2 * withRefresh.RotationInterval)})
	if states(second.Set) != "retired retired active next" {
		t.Fatalf("after a second rotation: %q", states(second.Set))
	}
	refreshEnds := rotatedAt.Add(refreshRetention)
	kept := next(t, Request{Current: second.Set, Policy: withRefresh, Now: refreshEnds.Add(-time.Second)})
	if _, ok := kept.Set.Lookup(retired.ID); !ok || kept.RequeueAfter != time.Second {
		t.Fatalf("a second before refreshExpiresAt: kept %v, RequeueAfter %s", ok, kept.RequeueAfter)
	}
	gone := next(t, Request{Current: kept.Set, Policy: withRefresh, Now: refreshEnds})
	if _, ok := gone.Set.Lookup(retired.ID); ok || eventTypes(gone.Events) != "KeyExpired/retired" {
		t.Fatalf("at refreshExpiresAt: still there %v, events %s", ok, eventTypes(gone.Events))
	}
}

func TestNext_RefreshDeadlineGrowsWithTheLifetimeButNeverShrinks(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: withRefresh, Now: rotatedAt}).Set
	longer := withRefresh
	longer.RefreshLifetime = 96 * time.Hour
	p := next(t, Request{Current: s, Policy: longer, Now: rotatedAt.Add(time.Hour)})
	if k := p.Set.Keys[0]; !p.Changed || !k.RefreshExpiresAt.Equal(rotatedAt.Add(DefaultMinPublishTime+96*time.Hour+30*time.Second)) || !k.ExpiresAt.Equal(rotatedAt.Add(retention)) {
		t.Fatalf("Changed %v, expiresAt %s, refreshExpiresAt %s", p.Changed, k.ExpiresAt, k.RefreshExpiresAt)
	}
	shorter := withRefresh
	shorter.RefreshLifetime = 0
	q := next(t, Request{Current: s, Policy: shorter, Now: rotatedAt.Add(retention)})
	if q.Changed || states(q.Set) != "retired active next" {
		t.Fatalf("dropping the refresh lifetime cut a recorded deadline short: Changed %v states %q", q.Changed, states(q.Set))
	}
}

// A set written before refresh tokens existed has retired keys without refreshExpiresAt:
// the pass gives them one instead of deleting them at expiresAt.
func TestNext_RetiredKeyWithoutRefreshDeadlineGetsOne(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: policy, Now: rotatedAt}).Set
	s.Keys[0].RefreshExpiresAt = nil
	p := next(t, Request{Current: s, Policy: withRefresh, Now: rotatedAt.Add(time.Minute)})
	if k := p.Set.Keys[0]; !p.Changed || k.RefreshExpiresAt == nil || !k.RefreshExpiresAt.Equal(rotatedAt.Add(refreshRetention)) {
		t.Fatalf("Changed %v, refreshExpiresAt %v", p.Changed, k.RefreshExpiresAt)
	}
}

// TestNext_EveryRefreshTokenOutlivesRotations drives the lifecycle for many intervals, as
// the controller does, and checks at every pass, for every key that ever signed: it stays
// in the set (the issuer verifies refreshes with it) until the last refresh token it could
// have signed expires, and in the published set (verifiers, JWKS) until the last access
// token does, but no longer.
func TestNext_EveryRefreshTokenOutlivesRotations(t *testing.T) {
	short := Policy{RotationInterval: time.Hour, MaxTokenLifetime: 15 * time.Minute, RefreshLifetime: 150 * time.Minute, Leeway: 30 * time.Second}
	now := t0
	s := next(t, Request{Policy: short, Now: now}).Set
	stoppedSigning := map[string]time.Time{} // kid -> when it was retired
	maxKeys := 0
	for step := 0; now.Before(t0.Add(12 * time.Hour)); step++ {
		p := next(t, Request{Current: roundTrip(t, s), Policy: short, Now: now})
		for _, e := range p.Events {
			if e.Type == KeyRotated && e.PreviousKeyID != "" {
				stoppedSigning[e.PreviousKeyID] = now
			}
		}
		s = p.Set
		published := s.Published(now)
		for kid, retiredAt := range stoppedSigning {
			lastSigned := retiredAt.Add(DefaultMinPublishTime)
			_, inSet := s.Lookup(kid)
			_, inPublished := published.Lookup(kid)
			if wantSet := now.Before(lastSigned.Add(short.RefreshLifetime + short.Leeway)); inSet != wantSet {
				t.Fatalf("at %s key %s (retired %s) in the set = %v, want %v", now, kid, retiredAt, inSet, wantSet)
			}
			if wantPub := now.Before(lastSigned.Add(short.MaxTokenLifetime + short.Leeway)); inPublished != wantPub {
				t.Fatalf("at %s key %s (retired %s) published = %v, want %v", now, kid, retiredAt, inPublished, wantPub)
			}
		}
		maxKeys = max(maxKeys, len(s.Keys))
		// Wake when asked, and every third pass a little earlier, as a watch event would.
		if step%3 == 2 {
			now = now.Add(p.RequeueAfter / 2).Truncate(time.Second)
		} else {
			now = now.Add(p.RequeueAfter)
		}
	}
	if len(stoppedSigning) < 10 {
		t.Fatalf("only %d rotations in 12h at 1h intervals", len(stoppedSigning))
	}
	// 150m of refresh over 1h intervals: at most three retired keys beside active and next.
	if maxKeys > 5 {
		t.Errorf("the set grew to %d keys", maxKeys)
	}
}
