package keylifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

var policy = Policy{RotationInterval: 24 * time.Hour, MaxTokenLifetime: 15 * time.Minute, Leeway: 30 * time.Second}

// retention is how long policy keeps a retired key: the default publish time (a replica may
// sign with it that long after the rotation), then the maximum token lifetime plus leeway.
const retention = DefaultMinPublishTime + 15*time.Minute + 30*time.Second

func next(t *testing.T, req Request) Plan {
	t.Helper()
	p, err := Next(req, keyfiles.GenerateKey)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if p.RequeueAfter < MinRequeue {
		t.Fatalf("RequeueAfter = %s, want at least %s", p.RequeueAfter, MinRequeue)
	}
	checkInvariants(t, p.Set)
	return p
}

// checkInvariants asserts what every stored set must keep, and that it survives the
// Secret's encoding: the operator reads it back from the API on every pass.
func checkInvariants(t *testing.T, s keydomain.Set) {
	t.Helper()
	files, err := keyfiles.Encode(s)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if _, err := keyfiles.Decode(files); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if _, ok := s.Next(); !ok {
		t.Fatalf("set has no next key: %+v", states(s))
	}
	for _, k := range s.Keys {
		if k.State == keydomain.StateRetired && (k.Private != nil || k.RetiredAt == nil || k.ExpiresAt == nil) {
			t.Fatalf("retired key %s keeps private=%v retiredAt=%v expiresAt=%v", k.ID, k.Private != nil, k.RetiredAt, k.ExpiresAt)
		}
		if k.State != keydomain.StateRetired && k.Private == nil {
			t.Fatalf("%s key %s has no private key", k.State, k.ID)
		}
	}
}

func states(s keydomain.Set) string {
	var b strings.Builder
	for _, k := range s.Keys {
		b.WriteString(string(k.State))
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// roundTrip stores and reloads a set as the operator does through the Secret.
func roundTrip(t *testing.T, s keydomain.Set) keydomain.Set {
	t.Helper()
	files, err := keyfiles.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keyfiles.Decode(files)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func eventTypes(events []Event) string {
	var parts []string
	for _, e := range events {
		parts = append(parts, string(e.Type)+"/"+string(e.State))
	}
	return strings.Join(parts, ",")
}

func created(t *testing.T) keydomain.Set {
	t.Helper()
	return next(t, Request{Policy: policy, Now: t0}).Set
}

func TestNext_CreatesActiveAndNextTogether(t *testing.T) {
	p := next(t, Request{Policy: policy, Now: t0.Add(123 * time.Millisecond)})
	if got := states(p.Set); got != "active next" {
		t.Fatalf("states = %q, want active next", got)
	}
	if !p.Changed {
		t.Error("Changed = false for a new set")
	}
	if got := eventTypes(p.Events); got != "KeyCreated/active,KeyCreated/next" {
		t.Errorf("events = %s", got)
	}
	for _, k := range p.Set.Keys {
		if !k.CreatedAt.Equal(t0) {
			t.Errorf("%s CreatedAt = %s, want %s (whole seconds)", k.State, k.CreatedAt, t0)
		}
	}
	if !p.NextRotation.Equal(t0.Add(policy.RotationInterval)) || p.RequeueAfter != policy.RotationInterval {
		t.Errorf("NextRotation = %s, RequeueAfter = %s; want %s and %s", p.NextRotation, p.RequeueAfter, t0.Add(policy.RotationInterval), policy.RotationInterval)
	}
}

func TestNext_CreationSatisfiesAPendingRotationRequest(t *testing.T) {
	p := next(t, Request{Policy: policy, Now: t0, RotateRequest: "r1"})
	if !p.RotationHandled {
		t.Error("RotationHandled = false: a fresh set already answers the request")
	}
	if got := eventTypes(p.Events); strings.Contains(got, "KeyRotated") {
		t.Errorf("events = %s, want no rotation on creation", got)
	}
}

func TestNext_NothingDueChangesNothing(t *testing.T) {
	s := created(t)
	p := next(t, Request{Current: s, Policy: policy, Now: t0.Add(10 * time.Hour)})
	if p.Changed || len(p.Events) != 0 {
		t.Fatalf("Changed = %v, events = %s", p.Changed, eventTypes(p.Events))
	}
	if p.RequeueAfter != 14*time.Hour {
		t.Errorf("RequeueAfter = %s, want 14h", p.RequeueAfter)
	}
}

func TestNext_RotatesOnSchedule(t *testing.T) {
	s := created(t)
	oldActive, _ := s.Active()
	oldNext, _ := s.Next()
	now := t0.Add(policy.RotationInterval)

	before := next(t, Request{Current: s, Policy: policy, Now: now.Add(-time.Second)})
	if before.Changed || before.RequeueAfter != time.Second {
		t.Fatalf("a second early: Changed = %v, RequeueAfter = %s", before.Changed, before.RequeueAfter)
	}

	p := next(t, Request{Current: s, Policy: policy, Now: now})
	if got := states(p.Set); got != "retired active next" {
		t.Fatalf("states = %q", got)
	}
	retired, _ := p.Set.Lookup(oldActive.ID)
	if retired.State != keydomain.StateRetired || retired.Private != nil || !retired.RetiredAt.Equal(now) || !retired.ExpiresAt.Equal(now.Add(retention)) {
		t.Errorf("old active: state %s private %v retiredAt %v expiresAt %v", retired.State, retired.Private != nil, retired.RetiredAt, retired.ExpiresAt)
	}
	active, _ := p.Set.Active()
	if active.ID != oldNext.ID || !active.ActivatedAt.Equal(now) {
		t.Errorf("active = %s activated %v, want the old next %s activated at %s", active.ID, active.ActivatedAt, oldNext.ID, now)
	}
	if active.CreatedAt.After(now.Add(-policy.RotationInterval)) {
		t.Errorf("the new active key was published at %s, less than an interval before it signs", active.CreatedAt)
	}
	newNext, _ := p.Set.Next()
	if newNext.ID == oldNext.ID || !newNext.CreatedAt.Equal(now) {
		t.Errorf("no fresh next key: %s created %s", newNext.ID, newNext.CreatedAt)
	}
	if got := eventTypes(p.Events); got != "KeyRotated/active,KeyCreated/next" {
		t.Errorf("events = %s", got)
	}
	if e := p.Events[0]; e.PreviousKeyID != oldActive.ID || e.Manual {
		t.Errorf("rotation event = %+v", e)
	}
	if p.RequeueAfter != retention {
		t.Errorf("RequeueAfter = %s, want the retired key's expiry %s", p.RequeueAfter, retention)
	}
	if s.Keys[0].State != keydomain.StateActive || s.Keys[0].Private == nil {
		t.Error("Next mutated its input")
	}
}

func TestNext_RetiredKeyStaysUntilItsRetention(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: policy, Now: rotatedAt}).Set
	kept := next(t, Request{Current: s, Policy: policy, Now: rotatedAt.Add(retention - time.Second)})
	if kept.Changed || states(kept.Set) != "retired active next" {
		t.Fatalf("a second before expiry: Changed = %v, states %q", kept.Changed, states(kept.Set))
	}
	if kept.RequeueAfter != time.Second {
		t.Errorf("RequeueAfter = %s, want 1s", kept.RequeueAfter)
	}
	gone := next(t, Request{Current: s, Policy: policy, Now: rotatedAt.Add(retention)})
	if states(gone.Set) != "active next" || eventTypes(gone.Events) != "KeyExpired/retired" {
		t.Fatalf("at expiry: states %q, events %s", states(gone.Set), eventTypes(gone.Events))
	}
	if gone.RequeueAfter != policy.RotationInterval-retention {
		t.Errorf("RequeueAfter = %s, want the next rotation", gone.RequeueAfter)
	}
}

// TestNext_RetiredKeyOutlivesTokensOfReplicasThatSeeTheRotationLate covers the kubelet's
// propagation: a replica keeps signing with the old active key until its mounted Secret
// changes, which the minimum publish time bounds. A token it signs just before then must
// verify, on a replica that already dropped nothing, until it expires plus leeway.
func TestNext_RetiredKeyOutlivesTokensOfReplicasThatSeeTheRotationLate(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: policy, Now: rotatedAt}).Set
	lastSigned := rotatedAt.Add(DefaultMinPublishTime)
	tokenValidUntil := lastSigned.Add(policy.MaxTokenLifetime + policy.Leeway)
	p := next(t, Request{Current: s, Policy: policy, Now: tokenValidUntil.Add(-time.Second)})
	if states(p.Set) != "retired active next" {
		t.Fatalf("a second before the last token signed by a lagging replica expires: states %q", states(p.Set))
	}
	if k := p.Set.Keys[0]; !k.RetiredAt.Equal(rotatedAt) || !k.ExpiresAt.Equal(tokenValidUntil) {
		t.Errorf("retired at %s, expires at %s; want %s and %s", k.RetiredAt, k.ExpiresAt, rotatedAt, tokenValidUntil)
	}
	fast := policy
	fast.MinPublishTime = 3 * time.Second
	q := next(t, Request{Current: next(t, Request{Current: created(t), Policy: fast, Now: rotatedAt}).Set, Policy: fast, Now: rotatedAt})
	if k := q.Set.Keys[0]; !k.ExpiresAt.Equal(rotatedAt.Add(3*time.Second + policy.MaxTokenLifetime + policy.Leeway)) {
		t.Errorf("with a 3s publish time the retired key expires at %s", k.ExpiresAt)
	}
}

func TestNext_LongerRetentionExtendsARetiredKey(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: policy, Now: rotatedAt}).Set
	longer := policy
	longer.MaxTokenLifetime = time.Hour
	p := next(t, Request{Current: s, Policy: longer, Now: rotatedAt.Add(retention)})
	if states(p.Set) != "retired active next" || !p.Changed {
		t.Fatalf("states %q Changed %v: the key must outlive tokens of the new maximum lifetime", states(p.Set), p.Changed)
	}
	if k := p.Set.Keys[0]; !k.ExpiresAt.Equal(rotatedAt.Add(DefaultMinPublishTime + time.Hour + 30*time.Second)) {
		t.Errorf("ExpiresAt = %s", k.ExpiresAt)
	}
	shorter := policy
	shorter.MaxTokenLifetime = time.Minute
	q := next(t, Request{Current: s, Policy: shorter, Now: rotatedAt.Add(2 * time.Minute)})
	if q.Changed {
		t.Errorf("a shorter lifetime shortened a recorded expiry: %s", states(q.Set))
	}
}

func TestNext_ManualRotation(t *testing.T) {
	s := created(t)
	now := t0.Add(time.Hour)
	p := next(t, Request{Current: s, Policy: policy, Now: now, RotateRequest: "r1"})
	if !p.RotationHandled || eventTypes(p.Events) != "KeyRotated/active,KeyCreated/next" || !p.Events[0].Manual {
		t.Fatalf("handled %v events %s manual %v", p.RotationHandled, eventTypes(p.Events), p.Events[0].Manual)
	}
	if !p.NextRotation.Equal(now.Add(policy.RotationInterval)) {
		t.Errorf("NextRotation = %s, want a whole interval after the manual rotation", p.NextRotation)
	}

	// A second request right away waits until the fresh next key has propagated.
	soon := now.Add(time.Minute)
	q := next(t, Request{Current: p.Set, Policy: policy, Now: soon, RotateRequest: "r1"})
	if q.RotationHandled || q.Changed {
		t.Fatalf("rotated onto a key published a minute ago: handled %v changed %v", q.RotationHandled, q.Changed)
	}
	if q.RequeueAfter != DefaultMinPublishTime-time.Minute {
		t.Errorf("RequeueAfter = %s, want %s", q.RequeueAfter, DefaultMinPublishTime-time.Minute)
	}
	r := next(t, Request{Current: q.Set, Policy: policy, Now: now.Add(DefaultMinPublishTime), RotateRequest: "r1"})
	if !r.RotationHandled || !r.Changed {
		t.Fatalf("after DefaultMinPublishTime: handled %v changed %v", r.RotationHandled, r.Changed)
	}
	if got := states(r.Set); got != "retired retired active next" {
		t.Errorf("states = %q", got)
	}
}

func TestNext_ShorterMinPublishTimePromotesSoonerButNeverEarlier(t *testing.T) {
	fast := policy
	fast.MinPublishTime = 3 * time.Second
	now := t0.Add(time.Hour)
	p := next(t, Request{Current: next(t, Request{Policy: fast, Now: t0}).Set, Policy: fast, Now: now, RotateRequest: "r1"})
	if !p.RotationHandled {
		t.Fatal("the first manual rotation was not handled")
	}
	published := p.Set.Keys[len(p.Set.Keys)-1].CreatedAt

	// Just before the fresh next key has been published for 3s, a request still waits,
	// and the plan comes back exactly when the key may sign.
	early := next(t, Request{Current: p.Set, Policy: fast, Now: published.Add(fast.MinPublishTime - time.Millisecond), RotateRequest: "r1"})
	if early.RotationHandled || early.Changed {
		t.Fatalf("rotated onto a key published for less than %s: handled %v changed %v", fast.MinPublishTime, early.RotationHandled, early.Changed)
	}
	if early.RequeueAfter != MinRequeue {
		t.Errorf("RequeueAfter = %s, want %s (a millisecond rounds up to the shortest requeue)", early.RequeueAfter, MinRequeue)
	}
	soon := next(t, Request{Current: p.Set, Policy: fast, Now: published.Add(time.Second), RotateRequest: "r1"})
	if soon.RequeueAfter != fast.MinPublishTime-time.Second {
		t.Errorf("RequeueAfter = %s, want %s", soon.RequeueAfter, fast.MinPublishTime-time.Second)
	}

	// At 3s it rotates, long before the default would let it.
	at := published.Add(fast.MinPublishTime)
	q := next(t, Request{Current: p.Set, Policy: fast, Now: at, RotateRequest: "r1"})
	if !q.RotationHandled || eventTypes(q.Events) != "KeyRotated/active,KeyCreated/next" {
		t.Fatalf("after %s: handled %v events %s", fast.MinPublishTime, q.RotationHandled, eventTypes(q.Events))
	}
	d := next(t, Request{Current: p.Set, Policy: policy, Now: at, RotateRequest: "r1"})
	if d.RotationHandled || d.RequeueAfter != DefaultMinPublishTime-fast.MinPublishTime {
		t.Errorf("the default policy: handled %v RequeueAfter %s, want a wait of %s", d.RotationHandled, d.RequeueAfter, DefaultMinPublishTime-fast.MinPublishTime)
	}
}

func TestNext_Revocation(t *testing.T) {
	s := created(t)
	rotated := next(t, Request{Current: s, Policy: policy, Now: t0.Add(policy.RotationInterval)}).Set
	now := t0.Add(policy.RotationInterval + time.Minute)
	retired, active, nxt := rotated.Keys[0], rotated.Keys[1], rotated.Keys[2]

	cases := []struct {
		name       string
		revoked    []string
		wantStates string
		wantEvents string
		check      func(t *testing.T, p Plan)
	}{
		{"unknown kid", []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "retired active next", "", nil},
		{"retired", []string{retired.ID}, "active next", "KeyRevoked/retired", nil},
		{"next", []string{nxt.ID}, "retired active next", "KeyRevoked/next,KeyCreated/next", func(t *testing.T, p Plan) {
			if n, _ := p.Set.Next(); n.ID == nxt.ID {
				t.Error("revoked next key still published")
			}
			if p.RequeueAfter != retention-time.Minute {
				t.Errorf("RequeueAfter = %s", p.RequeueAfter)
			}
		}},
		{"active promotes next at once", []string{active.ID}, "retired active next", "KeyRevoked/active,KeyRotated/active,KeyCreated/next", func(t *testing.T, p Plan) {
			if a, _ := p.Set.Active(); a.ID != nxt.ID || !a.ActivatedAt.Equal(now) {
				t.Errorf("active = %s, want the old next %s", a.ID, nxt.ID)
			}
			if p.Events[1].PreviousKeyID != "" {
				t.Errorf("a revoked key is reported as retired: %+v", p.Events[1])
			}
		}},
		{"active and next", []string{active.ID, nxt.ID}, "retired active next", "KeyRevoked/active,KeyRevoked/next,KeyCreated/active,KeyCreated/next", nil},
		{"everything", []string{retired.ID, active.ID, nxt.ID}, "active next", "KeyRevoked/retired,KeyRevoked/active,KeyRevoked/next,KeyCreated/active,KeyCreated/next", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := policy
			pol.Revoked = tc.revoked
			p := next(t, Request{Current: rotated, Policy: pol, Now: now})
			if got := states(p.Set); got != tc.wantStates {
				t.Errorf("states = %q, want %q", got, tc.wantStates)
			}
			if got := eventTypes(p.Events); got != tc.wantEvents {
				t.Errorf("events = %q, want %q", got, tc.wantEvents)
			}
			if p.Changed != (tc.wantEvents != "") {
				t.Errorf("Changed = %v", p.Changed)
			}
			for _, kid := range tc.revoked {
				if _, ok := p.Set.Lookup(kid); ok {
					t.Errorf("revoked key %s still published", kid)
				}
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			again := next(t, Request{Current: p.Set, Policy: pol, Now: now})
			if again.Changed {
				t.Errorf("a second pass changed the set again: %s", eventTypes(again.Events))
			}
		})
	}
}

func TestNext_ClockJumpForwardRotatesOnce(t *testing.T) {
	s := next(t, Request{Current: created(t), Policy: policy, Now: t0.Add(policy.RotationInterval)}).Set
	now := t0.Add(10 * policy.RotationInterval)
	p := next(t, Request{Current: s, Policy: policy, Now: now})
	if got := eventTypes(p.Events); got != "KeyExpired/retired,KeyRotated/active,KeyCreated/next" {
		t.Fatalf("events = %s, want one expiry and one rotation", got)
	}
	if !p.NextRotation.Equal(now.Add(policy.RotationInterval)) {
		t.Errorf("NextRotation = %s", p.NextRotation)
	}
	again := next(t, Request{Current: p.Set, Policy: policy, Now: now.Add(time.Minute)})
	if again.Changed {
		t.Errorf("rotated twice after one jump: %s", eventTypes(again.Events))
	}
}

func TestNext_ClockJumpBackwardWaitsForTheRecordedSchedule(t *testing.T) {
	rotatedAt := t0.Add(policy.RotationInterval)
	s := next(t, Request{Current: created(t), Policy: policy, Now: rotatedAt}).Set
	now := rotatedAt.Add(-3 * time.Hour)
	p := next(t, Request{Current: s, Policy: policy, Now: now})
	if p.Changed {
		t.Fatalf("a clock jump backwards changed the set: %s", eventTypes(p.Events))
	}
	if p.RequeueAfter != 3*time.Hour+retention {
		t.Errorf("RequeueAfter = %s, want the recorded expiry %s away", p.RequeueAfter, 3*time.Hour+retention)
	}
}

// TestNext_ManyIntervalsNeverSkipOrDouble drives the lifecycle through several intervals the
// way the controller does: it wakes up when asked, and also at arbitrary other times (restarts,
// watch events), always reading the set back through its Secret encoding.
func TestNext_ManyIntervalsNeverSkipOrDouble(t *testing.T) {
	short := Policy{RotationInterval: time.Hour, MaxTokenLifetime: 15 * time.Minute, Leeway: 30 * time.Second}
	now := t0
	s := next(t, Request{Policy: short, Now: now}).Set
	rotations := 0
	verifiable := map[string]time.Time{} // kid -> when it was first published
	for _, k := range s.Keys {
		verifiable[k.ID] = k.CreatedAt
	}
	end := t0.Add(6*time.Hour + 30*time.Minute)
	for step := 0; now.Before(end); step++ {
		p := next(t, Request{Current: roundTrip(t, s), Policy: short, Now: now})
		for _, e := range p.Events {
			switch e.Type {
			case KeyRotated:
				rotations++
				if published := verifiable[e.KeyID]; now.Sub(published) < short.RotationInterval {
					t.Fatalf("key %s signs at %s but was published only at %s", e.KeyID, now, published)
				}
			case KeyCreated:
				verifiable[e.KeyID] = now
			case KeyExpired:
				if prev, ok := s.Lookup(e.KeyID); !ok || now.Before(prev.RetiredAt.Add(retention)) {
					t.Fatalf("key %s deleted at %s before its tokens expired", e.KeyID, now)
				}
			}
		}
		s = p.Set
		// Alternate between waking exactly when asked and waking early, as a restart would.
		if step%3 == 2 {
			now = now.Add(p.RequeueAfter / 2).Truncate(time.Second)
		} else {
			now = now.Add(p.RequeueAfter)
		}
	}
	if rotations != 6 {
		t.Fatalf("rotations in 6h30m at 1h intervals = %d, want 6", rotations)
	}
}

func TestNext_RejectsWhatItCannotFollow(t *testing.T) {
	s := created(t)
	noActive := keydomain.Set{Keys: []keydomain.Key{s.Keys[1]}}
	boom := errors.New("entropy exhausted")
	failing := func(keydomain.State, time.Time) (keydomain.Key, error) { return keydomain.Key{}, boom }
	cases := []struct {
		name string
		req  Request
		gen  Generator
		want string
	}{
		{"zero interval", Request{Policy: Policy{MaxTokenLifetime: time.Minute}, Now: t0}, keyfiles.GenerateKey, "rotation interval must be positive"},
		{"negative leeway", Request{Policy: Policy{RotationInterval: time.Hour, MaxTokenLifetime: time.Minute, Leeway: -1}, Now: t0}, keyfiles.GenerateKey, "leeway must not be negative"},
		{"refresh shorter than access", Request{Policy: Policy{RotationInterval: time.Hour, MaxTokenLifetime: 15 * time.Minute, RefreshLifetime: time.Minute}, Now: t0}, keyfiles.GenerateKey, "refresh token lifetime 1m0s must be at least the maximum token lifetime 15m0s"},
		{"negative publish time", Request{Policy: Policy{RotationInterval: time.Hour, MaxTokenLifetime: time.Minute, MinPublishTime: -time.Second}, Now: t0}, keyfiles.GenerateKey, "minimum publish time must not be negative"},
		{"no active key", Request{Current: noActive, Policy: policy, Now: t0}, keyfiles.GenerateKey, "no active key"},
		{"generator fails", Request{Policy: policy, Now: t0}, failing, "entropy exhausted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Next(tc.req, tc.gen)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if tc.name == "generator fails" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the generator's", err)
			}
		})
	}
}

func TestNext_AddsAMissingNextKeyAndWaitsBeforeItSigns(t *testing.T) {
	s := created(t)
	onlyActive := keydomain.Set{Keys: []keydomain.Key{s.Keys[0]}}
	due := t0.Add(policy.RotationInterval)
	p := next(t, Request{Current: onlyActive, Policy: policy, Now: due})
	if got := eventTypes(p.Events); got != "KeyCreated/next" {
		t.Fatalf("events = %s, want only a new next key: it must be published before it signs", got)
	}
	if p.RequeueAfter != DefaultMinPublishTime {
		t.Errorf("RequeueAfter = %s, want %s", p.RequeueAfter, DefaultMinPublishTime)
	}
	q := next(t, Request{Current: p.Set, Policy: policy, Now: due.Add(DefaultMinPublishTime)})
	if got := eventTypes(q.Events); got != "KeyRotated/active,KeyCreated/next" {
		t.Errorf("events once the new next key has propagated = %s", got)
	}
}
