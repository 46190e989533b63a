package userlogouts

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

func TestPlanOf_PendingOldestFirstForgetsExpiredLeavesInvalid(t *testing.T) {
	applied := func(r Request, at time.Time) Request { r.AppliedAt, r.AppliedBy = &at, "auth-issuer-0"; return r }
	req := func(user string, at time.Time) Request { r, _ := New(user, "admin", at); return r }
	data := map[string]string{
		"b-new":       req("u-1", t0.Add(-time.Minute)).Encode(),
		"a-old":       req("u-2", t0.Add(-time.Hour)).Encode(),
		"done-recent": applied(req("u-3", t0.Add(-2*time.Hour)), t0.Add(-2*time.Hour)).Encode(),
		"done-old":    applied(req("u-4", t0.Add(-48*time.Hour)), t0.Add(-48*time.Hour)).Encode(),
		"garbage":     "not json",
		"no-user":     `{"requestedAt":"2026-12-02T00:00:00Z"}`,
	}
	p := PlanOf(data, t0, func(at time.Time) time.Time { return at.Add(24 * time.Hour) })
	if !slices.Equal(p.Pending, []string{"a-old", "b-new"}) {
		t.Errorf("pending = %v, want the oldest request first", p.Pending)
	}
	if !slices.Equal(p.Applied, []string{"done-recent"}) {
		t.Errorf("applied = %v, want the applied request not yet forgotten (for the store to confirm)", p.Applied)
	}
	if !slices.Equal(p.Forget, []string{"done-old"}) {
		t.Errorf("forget = %v, want only the request whose cutoff has expired", p.Forget)
	}
	if len(p.Invalid) != 2 || !strings.Contains(p.Invalid["no-user"].Error(), "user id is empty") || p.Invalid["garbage"] == nil {
		t.Errorf("invalid = %v", p.Invalid)
	}
	if p.Requests["a-old"].UserID != "u-2" || p.Requests["a-old"].RequestedBy != "admin" {
		t.Errorf("parsed request = %+v", p.Requests["a-old"])
	}
}

func TestNew_RefusesAnEmptyOrLongUserID(t *testing.T) {
	if _, err := New("", "", t0); err == nil || err.Error() != "the user id is empty" {
		t.Errorf("empty id: %v", err)
	}
	if _, err := New(strings.Repeat("x", MaxUserIDBytes+1), "", t0); err == nil || !strings.Contains(err.Error(), "longer than 512 bytes") {
		t.Errorf("long id: %v", err)
	}
}

func TestNewKey_IsAValidConfigMapKeyAndUnique(t *testing.T) {
	a, b := NewKey(t0), NewKey(t0)
	valid := regexp.MustCompile(`^logout-20261202T010000Z-[0-9a-f]{8}$`)
	if !valid.MatchString(a) || a == b {
		t.Errorf("keys %q, %q: want valid and distinct", a, b)
	}
}

// TestPlanOf_AnApplicationNoIssuerCanHaveWrittenIsPending: whoever may write the ConfigMap
// may write appliedAt too; an application before the request, in the future or by no one is
// not believed, and the request is applied (again: that only moves the cutoff later).
func TestPlanOf_AnApplicationNoIssuerCanHaveWrittenIsPending(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requested time.Time
		applied   time.Time
		by        string
	}{
		{"applied before it was requested", t0.Add(-time.Minute), t0.Add(-time.Hour), "auth-issuer-0"},
		{"applied in the future (kept past its time)", t0.Add(-time.Minute), t0.Add(365 * 24 * time.Hour), "auth-issuer-0"},
		{"applied by no one", t0.Add(-time.Minute), t0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := New("u-1", "admin", tc.requested)
			r.AppliedAt, r.AppliedBy = &tc.applied, tc.by
			p := PlanOf(map[string]string{"k": r.Encode()}, t0, func(at time.Time) time.Time { return at.Add(24 * time.Hour) })
			if !slices.Equal(p.Pending, []string{"k"}) || len(p.Applied) != 0 || len(p.Forget) != 0 {
				t.Errorf("pending %v applied %v forget %v, want it pending", p.Pending, p.Applied, p.Forget)
			}
		})
	}
}
