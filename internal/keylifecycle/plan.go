package keylifecycle

import (
	"fmt"
	"sort"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// EventType names something that happened to a key during a pass.
type EventType string

const (
	// KeyCreated is a new key published (active at creation or after a revocation, else next).
	KeyCreated EventType = "KeyCreated"
	// KeyRotated is the next key taking over from the active key.
	KeyRotated EventType = "KeyRotated"
	// KeyRevoked is a key removed at once because the spec lists it as revoked.
	KeyRevoked EventType = "KeyRevoked"
	// KeyExpired is a retired key deleted once no token it signed, access or refresh, can be
	// valid.
	KeyExpired EventType = "KeyExpired"
)

// Event records one step of a plan.
type Event struct {
	Type EventType
	// KeyID is the key the event is about: the new active key for KeyRotated.
	KeyID string
	// State is the key's state after the event, or before it for KeyRevoked and KeyExpired.
	State keydomain.State
	// PreviousKeyID is, for KeyRotated, the key that signed before (empty when it was revoked).
	PreviousKeyID string
	// Manual is, for KeyRotated, true when a rotation request rather than the schedule caused it.
	Manual bool
}

// Request is the input of one pass: what the API holds now and what the spec asks for.
type Request struct {
	// Current is the stored set; no keys means there is none yet.
	Current keydomain.Set
	Policy  Policy
	// Now is the pass's clock reading.
	Now time.Time
	// RotateRequest is the value of the AuthService's rotate annotation, "" when unset. A
	// value other than the last one handled asks for one manual rotation.
	RotateRequest string
	// Record is the bookkeeping stored beside Current, on the pass that wrote it.
	Record Record
	// Reported is what the status last reported. It stands in for Record when no set is
	// stored, and tells a first set apart from one that replaces lost keys.
	Reported Reported
}

// Plan is the output of one pass.
type Plan struct {
	// Set is the key set to store.
	Set keydomain.Set
	// Changed is true when Set differs from the request's Current.
	Changed bool
	// Events lists what happened, in order.
	Events []Event
	// RotationHandled is true when the pending manual request has been satisfied.
	RotationHandled bool
	// Record is the bookkeeping to store beside Set and to report in the status.
	Record Record
	// KeysLost is true when this pass created a set although keys had been published
	// before: the stored set was deleted, and Record.LostKeyID names the key that signed.
	KeysLost bool
	// NextRotation is when the next key is due to take over.
	NextRotation time.Time
	// RequeueAfter is when to come back: the earliest of the next rotation, a pending manual
	// rotation and a retired key's expiry or refresh expiry. At least MinRequeue.
	RequeueAfter time.Duration
}

// Generator makes a fresh key in a state at a time; keyfiles.GenerateKey is the real one.
type Generator func(state keydomain.State, now time.Time) (keydomain.Key, error)

// Next computes the key set that follows from a request. It never mutates req.Current.
// Steps, in order: create a set when there is none; remove revoked keys (promoting the next
// key at once when the active key is revoked); delete retired keys past their expiry; make
// sure a next key exists; rotate when the schedule or a request says so and the next key has
// been published long enough; then compute when to come back.
func Next(req Request, gen Generator) (Plan, error) {
	if err := req.Policy.Validate(); err != nil {
		return Plan{}, err
	}
	p := &planner{policy: req.Policy, now: req.Now.UTC().Truncate(time.Second), gen: gen}
	p.keys = append([]keydomain.Key(nil), req.Current.Keys...)
	handled := req.handledRequest()
	requested := req.RotateRequest != "" && req.RotateRequest != handled
	pending := requested

	if len(p.keys) == 0 {
		if err := p.create(); err != nil {
			return Plan{}, err
		}
		pending = false
	} else if _, ok := req.Current.Active(); !ok {
		return Plan{}, fmt.Errorf("the stored key set has no active key")
	}
	if err := p.revoke(); err != nil {
		return Plan{}, err
	}
	p.expire()
	if err := p.ensureNext(); err != nil {
		return Plan{}, err
	}
	rotated, err := p.rotateIfDue(pending)
	if err != nil {
		return Plan{}, err
	}
	if rotated {
		pending = false
	}

	sortKeys(p.keys)
	plan := Plan{
		Set:             keydomain.Set{Keys: p.keys},
		Changed:         p.changed,
		Events:          p.events,
		RotationHandled: requested && !pending,
	}
	if plan.RotationHandled {
		handled = req.RotateRequest
	}
	plan.Record, plan.KeysLost = req.record(handled, p.promoted())
	plan.NextRotation, plan.RequeueAfter = p.schedule(pending)
	return plan, nil
}

type planner struct {
	policy  Policy
	now     time.Time
	gen     Generator
	keys    []keydomain.Key
	events  []Event
	changed bool
}

func (p *planner) create() error {
	for _, state := range []keydomain.State{keydomain.StateActive, keydomain.StateNext} {
		if err := p.add(state); err != nil {
			return err
		}
	}
	return nil
}

func (p *planner) add(state keydomain.State) error {
	k, err := p.gen(state, p.now)
	if err != nil {
		return fmt.Errorf("generating %s key: %w", state, err)
	}
	k.CreatedAt = p.now
	if state == keydomain.StateActive {
		k.Activate(p.now)
	}
	p.keys = append(p.keys, k)
	p.events = append(p.events, Event{Type: KeyCreated, KeyID: k.ID, State: state})
	p.changed = true
	return nil
}

func (p *planner) revoke() error {
	activeRevoked := false
	kept := p.keys[:0:0]
	for _, k := range p.keys {
		if !p.policy.revoked(k.ID) {
			kept = append(kept, k)
			continue
		}
		p.events = append(p.events, Event{Type: KeyRevoked, KeyID: k.ID, State: k.State})
		p.changed = true
		if k.State == keydomain.StateActive {
			activeRevoked = true
		}
	}
	p.keys = kept
	if !activeRevoked {
		return nil
	}
	if i := p.index(keydomain.StateNext); i >= 0 {
		p.promote(i, "", false)
		return nil
	}
	return p.add(keydomain.StateActive)
}

// expire records each retired key's two deadlines and deletes the keys past the later one.
// expiresAt ends its access window (it leaves the JWKS and the verifiers); refreshExpiresAt
// ends its life in the Secret, where the issuer verifies refresh tokens with it. A policy
// change may lengthen either deadline, never shorten one: a longer lifetime may even bring a
// key back into the JWKS, which is harmless, while a shorter one must not cut tokens short.
func (p *planner) expire() {
	kept := p.keys[:0:0]
	for _, k := range p.keys {
		if k.State != keydomain.StateRetired {
			kept = append(kept, k)
			continue
		}
		retiredAt := p.now
		if k.RetiredAt != nil {
			retiredAt = *k.RetiredAt
		}
		expiresAt := retiredAt.Add(p.policy.retention())
		if k.ExpiresAt != nil && k.ExpiresAt.After(expiresAt) {
			expiresAt = *k.ExpiresAt
		}
		refreshExpiresAt := retiredAt.Add(p.policy.refreshRetention())
		if k.RefreshExpiresAt != nil && k.RefreshExpiresAt.After(refreshExpiresAt) {
			refreshExpiresAt = *k.RefreshExpiresAt
		}
		if refreshExpiresAt.Before(expiresAt) {
			refreshExpiresAt = expiresAt
		}
		if !p.now.Before(refreshExpiresAt) {
			p.events = append(p.events, Event{Type: KeyExpired, KeyID: k.ID, State: k.State})
			p.changed = true
			continue
		}
		if k.RetiredAt == nil || !equalTime(k.ExpiresAt, expiresAt) || !equalTime(k.RefreshExpiresAt, refreshExpiresAt) {
			k.RetiredAt, k.ExpiresAt, k.RefreshExpiresAt = &retiredAt, &expiresAt, &refreshExpiresAt
			p.changed = true
		}
		kept = append(kept, k)
	}
	p.keys = kept
}

func equalTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

func (p *planner) ensureNext() error {
	if p.index(keydomain.StateNext) >= 0 {
		return nil
	}
	return p.add(keydomain.StateNext)
}

func (p *planner) rotateIfDue(requested bool) (bool, error) {
	active := p.keys[p.index(keydomain.StateActive)]
	next := p.keys[p.index(keydomain.StateNext)]
	due := !p.now.Before(activatedAt(active).Add(p.policy.RotationInterval))
	if !due && !requested {
		return false, nil
	}
	if p.now.Before(next.CreatedAt.Add(p.policy.minPublishTime())) {
		return false, nil
	}
	ai := p.index(keydomain.StateActive)
	retiredAt := p.now
	expiresAt := p.now.Add(p.policy.retention())
	refreshExpiresAt := p.now.Add(p.policy.refreshRetention())
	p.keys[ai].State = keydomain.StateRetired
	p.keys[ai].RetiredAt = &retiredAt
	p.keys[ai].ExpiresAt = &expiresAt
	p.keys[ai].RefreshExpiresAt = &refreshExpiresAt
	p.keys[ai].Private = nil
	p.promote(p.index(keydomain.StateNext), active.ID, requested && !due)
	return true, p.add(keydomain.StateNext)
}

// promoted reports whether a key took over signing in this pass, on schedule, on request
// or because the active key was revoked.
func (p *planner) promoted() bool {
	for _, e := range p.events {
		if e.Type == KeyRotated {
			return true
		}
	}
	return false
}

// promote makes the key at i the active key and records the rotation.
func (p *planner) promote(i int, previous string, manual bool) {
	p.keys[i].Activate(p.now)
	p.events = append(p.events, Event{Type: KeyRotated, KeyID: p.keys[i].ID, State: keydomain.StateActive, PreviousKeyID: previous, Manual: manual})
	p.changed = true
}

func (p *planner) schedule(pending bool) (time.Time, time.Duration) {
	active := p.keys[p.index(keydomain.StateActive)]
	next := p.keys[p.index(keydomain.StateNext)]
	promotable := next.CreatedAt.Add(p.policy.minPublishTime())
	rotateAt := activatedAt(active).Add(p.policy.RotationInterval)
	if promotable.After(rotateAt) {
		rotateAt = promotable
	}
	wake := rotateAt
	if pending && promotable.Before(wake) {
		wake = promotable
	}
	// A retired key's access window closing changes the projection and the JWKS, its
	// refresh deadline the Secret: both are worth a pass, once each.
	for _, k := range p.keys {
		if k.State != keydomain.StateRetired {
			continue
		}
		for _, at := range []*time.Time{k.ExpiresAt, k.RefreshExpiresAt} {
			if at != nil && at.After(p.now) && at.Before(wake) {
				wake = *at
			}
		}
	}
	return rotateAt, max(wake.Sub(p.now), MinRequeue)
}

func (p *planner) index(state keydomain.State) int {
	for i, k := range p.keys {
		if k.State == state {
			return i
		}
	}
	return -1
}

func activatedAt(k keydomain.Key) time.Time {
	if k.ActivatedAt != nil {
		return *k.ActivatedAt
	}
	return k.CreatedAt
}

var stateRank = map[keydomain.State]int{keydomain.StateRetired: 0, keydomain.StateActive: 1, keydomain.StateNext: 2}

// sortKeys orders a set as the manifest lists it: retired keys oldest first, then the
// active key, then the next key.
func sortKeys(keys []keydomain.Key) {
	sort.SliceStable(keys, func(i, j int) bool {
		if stateRank[keys[i].State] != stateRank[keys[j].State] {
			return stateRank[keys[i].State] < stateRank[keys[j].State]
		}
		return keys[i].CreatedAt.Before(keys[j].CreatedAt)
	})
}
