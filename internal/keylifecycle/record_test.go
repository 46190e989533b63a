package keylifecycle

import (
	"testing"
	"time"
)

// TestNext_KeepsTheRotationAndLossBookkeeping drives the bookkeeping stored beside a set:
// which rotate request was handled and which key was lost, from the stored set's record
// or, when no set is stored, from what the status reported.
func TestNext_KeepsTheRotationAndLossBookkeeping(t *testing.T) {
	stored := created(t) // created at t0
	activeID := func() string { k, _ := stored.Active(); return k.ID }()
	published := t0.Add(time.Hour)             // the next key may sign; no rotation is due
	fresh := t0.Add(DefaultMinPublishTime / 2) // the next key is too fresh to sign
	due := t0.Add(policy.RotationInterval)     // the schedule rotates
	revokeActive := policy
	revokeActive.Revoked = []string{activeID}

	for _, tc := range []struct {
		name        string
		req         Request
		wantRecord  Record
		wantHandled bool // Plan.RotationHandled
		wantLost    bool // Plan.KeysLost
		wantRotated bool
	}{
		{name: "first set, nothing asked",
			req:        Request{Policy: policy, Now: t0},
			wantRecord: Record{}},
		{name: "first set answers a pending request",
			req:         Request{Policy: policy, Now: t0, RotateRequest: "r1"},
			wantRecord:  Record{HandledRequest: "r1"},
			wantHandled: true},
		{name: "no set stored: the status says which request was handled",
			req:        Request{Policy: policy, Now: t0, RotateRequest: "r1", Reported: Reported{HandledRequest: "r1"}},
			wantRecord: Record{HandledRequest: "r1"}},
		{name: "no set stored after keys were published: the signing key is lost",
			req:        Request{Policy: policy, Now: t0, Reported: Reported{ActiveKeyID: "gone", HandledRequest: "r1"}, RotateRequest: "r1"},
			wantRecord: Record{HandledRequest: "r1", LostKeyID: "gone"},
			wantLost:   true},
		{name: "the stored record of a loss lasts until a rotation",
			req:        Request{Current: stored, Policy: policy, Now: published, Record: Record{LostKeyID: "gone"}},
			wantRecord: Record{LostKeyID: "gone"}},
		{name: "a scheduled rotation ends the loss",
			req:         Request{Current: stored, Policy: policy, Now: due, Record: Record{HandledRequest: "r1", LostKeyID: "gone"}},
			wantRecord:  Record{HandledRequest: "r1"},
			wantRotated: true},
		{name: "revoking the active key ends the loss",
			req:         Request{Current: stored, Policy: revokeActive, Now: published, Record: Record{LostKeyID: "gone"}},
			wantRecord:  Record{},
			wantRotated: true},
		{name: "the stored record, not the status, says which request was handled",
			req:        Request{Current: stored, Policy: policy, Now: published, RotateRequest: "r1", Record: Record{HandledRequest: "r1"}, Reported: Reported{ActiveKeyID: activeID, HandledRequest: "stale"}},
			wantRecord: Record{HandledRequest: "r1"}},
		{name: "a stored set's status never reports a loss",
			req:        Request{Current: stored, Policy: policy, Now: published, Reported: Reported{ActiveKeyID: "other"}},
			wantRecord: Record{}},
		{name: "a new request rotates once the next key is published long enough",
			req:         Request{Current: stored, Policy: policy, Now: published, RotateRequest: "r2", Record: Record{HandledRequest: "r1"}},
			wantRecord:  Record{HandledRequest: "r2"},
			wantHandled: true, wantRotated: true},
		{name: "a new request waits while the next key is too fresh",
			req:        Request{Current: stored, Policy: policy, Now: fresh, RotateRequest: "r2", Record: Record{HandledRequest: "r1"}},
			wantRecord: Record{HandledRequest: "r1"}},
		{name: "removing the annotation keeps the record",
			req:        Request{Current: stored, Policy: policy, Now: published, Record: Record{HandledRequest: "r1"}},
			wantRecord: Record{HandledRequest: "r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := next(t, tc.req)
			if p.Record != tc.wantRecord {
				t.Errorf("Record = %+v, want %+v", p.Record, tc.wantRecord)
			}
			if p.RotationHandled != tc.wantHandled {
				t.Errorf("RotationHandled = %v, want %v", p.RotationHandled, tc.wantHandled)
			}
			if p.KeysLost != tc.wantLost {
				t.Errorf("KeysLost = %v, want %v", p.KeysLost, tc.wantLost)
			}
			if rotated := hasRotation(p.Events); rotated != tc.wantRotated {
				t.Errorf("rotated = %v (events %s), want %v", rotated, eventTypes(p.Events), tc.wantRotated)
			}
		})
	}
}

func hasRotation(events []Event) bool {
	for _, e := range events {
		if e.Type == KeyRotated {
			return true
		}
	}
	return false
}
