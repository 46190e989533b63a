package keydomain

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

func key(id string, state State) Key {
	return Key{KeyMeta: KeyMeta{ID: id, State: state, CreatedAt: t0.Add(-48 * time.Hour)}}
}

func retired(id string, expires time.Time) Key {
	k := key(id, StateRetired)
	retiredAt, refresh := expires.Add(-time.Hour), expires.Add(720*time.Hour)
	k.RetiredAt, k.ExpiresAt, k.RefreshExpiresAt = &retiredAt, &expires, &refresh
	return k
}

func TestSet_FindsKeysByStateAndKid(t *testing.T) {
	s := Set{Keys: []Key{retired("r", t0), key("a", StateActive), key("n", StateNext)}}
	if k, ok := s.Active(); !ok || k.ID != "a" {
		t.Errorf("Active = %q, %v; want a", k.ID, ok)
	}
	if k, ok := s.Next(); !ok || k.ID != "n" {
		t.Errorf("Next = %q, %v; want n", k.ID, ok)
	}
	if k, ok := s.Lookup("r"); !ok || k.State != StateRetired {
		t.Errorf("Lookup(r) = %+v, %v; want the retired key", k.KeyMeta, ok)
	}
	if _, ok := s.Lookup("missing"); ok {
		t.Error("Lookup found a kid that is not in the set")
	}
	if _, ok := (Set{}).Active(); ok {
		t.Error("an empty set has an active key")
	}
}

func TestPublished_ClosesAtExpiresAt(t *testing.T) {
	open, refreshOnly := retired("open", t0.Add(time.Hour)), retired("refresh-only", t0)
	noExpiry := key("no-expiry", StateRetired)
	s := Set{Keys: []Key{refreshOnly, open, key("a", StateActive), key("n", StateNext)}}
	for _, tc := range []struct {
		now  time.Time
		want int
	}{
		{t0.Add(-time.Second), 4},
		{t0, 3},
		{t0.Add(time.Hour - time.Second), 3},
		{t0.Add(time.Hour), 2},
	} {
		if got := len(s.Published(tc.now).Keys); got != tc.want {
			t.Errorf("at %s: %d published keys, want %d", tc.now, got, tc.want)
		}
	}
	if !open.AccessOpen(t0) || open.AccessOpen(*open.ExpiresAt) {
		t.Error("AccessOpen does not close exactly at ExpiresAt")
	}
	if !noExpiry.AccessOpen(t0.Add(1000 * time.Hour)) {
		t.Error("a retired key without ExpiresAt was withdrawn")
	}
}

func TestValidate_KeepsTheSetsInvariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []Key
		want string // "" when valid
	}{
		{"active and next", []Key{key("a", StateActive), key("n", StateNext)}, ""},
		{"active only", []Key{key("a", StateActive)}, ""},
		{"retired, active, next", []Key{retired("r", t0), key("a", StateActive), key("n", StateNext)}, ""},
		{"no active", []Key{key("n", StateNext)}, "exactly one active key, found 0"},
		{"two active", []Key{key("a", StateActive), key("b", StateActive)}, "exactly one active key, found 2"},
		{"two next", []Key{key("a", StateActive), key("n", StateNext), key("m", StateNext)}, "at most one next key, found 2"},
		{"duplicate kid", []Key{key("a", StateActive), key("a", StateNext)}, "key a is listed twice"},
		{"empty kid", []Key{key("", StateActive)}, "a key has no kid"},
		{"unknown state", []Key{key("a", StateActive), key("x", "lost")}, `key x has unknown state "lost"`},
	} {
		err := Set{Keys: tc.keys}.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Validate = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
