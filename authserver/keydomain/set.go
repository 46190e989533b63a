package keydomain

import (
	"errors"
	"fmt"
	"time"
)

// Set is a whole key set, in manifest order.
type Set struct {
	Keys []Key
}

// Active returns the key that signs, or false when the set has none.
func (s Set) Active() (Key, bool) {
	return s.first(StateActive)
}

// Next returns the pre-published key that will sign after the next rotation.
func (s Set) Next() (Key, bool) {
	return s.first(StateNext)
}

// Lookup returns the key with the given kid.
func (s Set) Lookup(kid string) (Key, bool) {
	for _, k := range s.Keys {
		if k.ID == kid {
			return k, true
		}
	}
	return Key{}, false
}

func (s Set) first(state State) (Key, bool) {
	for _, k := range s.Keys {
		if k.State == state {
			return k, true
		}
	}
	return Key{}, false
}

// Published returns the keys of s whose access window is open at now, in manifest order:
// what the verifiers, the public projection and the JWKS hold. Retired keys kept only for
// refresh verification are left out.
func (s Set) Published(now time.Time) Set {
	out := Set{Keys: make([]Key, 0, len(s.Keys))}
	for _, k := range s.Keys {
		if k.AccessOpen(now) {
			out.Keys = append(out.Keys, k)
		}
	}
	return out
}

// Validate checks the invariants every stored set keeps: unique kids, known states,
// exactly one active key, at most one next key.
func (s Set) Validate() error {
	seen := make(map[string]bool, len(s.Keys))
	var active, next int
	for _, k := range s.Keys {
		if k.ID == "" {
			return errors.New("a key has no kid")
		}
		if seen[k.ID] {
			return fmt.Errorf("key %s is listed twice", k.ID)
		}
		seen[k.ID] = true
		switch k.State {
		case StateActive:
			active++
		case StateNext:
			next++
		case StateRetired:
		default:
			return fmt.Errorf("key %s has unknown state %q", k.ID, k.State)
		}
	}
	if active != 1 {
		return fmt.Errorf("a key set needs exactly one active key, found %d", active)
	}
	if next > 1 {
		return fmt.Errorf("a key set has at most one next key, found %d", next)
	}
	return nil
}
