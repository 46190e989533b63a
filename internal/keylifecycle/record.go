package keylifecycle

// Record is the bookkeeping the operator stores beside a key set (in the signing-key
// Secret) and reports in the status. Stored with the set, it is written with the same
// optimistic concurrency, so a stale read cannot handle a request twice or forget a loss.
type Record struct {
	// HandledRequest is the last rotate annotation value that a rotation satisfied, "" when
	// none was ever handled.
	HandledRequest string
	// LostKeyID is the key that signed when the stored set was lost and recreated; the set
	// carries it until the next rotation, so the loss stays reported across restarts.
	LostKeyID string
}

// Reported is what the status last said about the keys: the fallback for a set that is
// no longer stored.
type Reported struct {
	// ActiveKeyID is the key the status last reported as signing, "" before any.
	ActiveKeyID string
	// HandledRequest is the status's record of the last handled rotate request.
	HandledRequest string
}

// stored reports whether the request holds a stored set. A stored set always has an
// active key, so an empty one means none is stored.
func (r Request) stored() bool { return len(r.Current.Keys) > 0 }

// handledRequest is the last rotate request handled: as recorded with the stored set,
// which is the source of truth, or as the status reported it when the set is gone.
func (r Request) handledRequest() string {
	if r.stored() {
		return r.Record.HandledRequest
	}
	return r.Reported.HandledRequest
}

// record is the bookkeeping that follows a pass that handled up to handled and, when
// rotated, promoted a new key. A set that is created while the status reports a key
// replaces keys that were published and lost: the signing key is recorded as lost until
// a rotation ends the period in which tokens it signed are refused.
func (r Request) record(handled string, rotated bool) (Record, bool) {
	lost := ""
	if r.stored() {
		lost = r.Record.LostKeyID
	}
	keysLost := !r.stored() && r.Reported.ActiveKeyID != ""
	if keysLost {
		lost = r.Reported.ActiveKeyID
	}
	if rotated {
		lost = ""
	}
	return Record{HandledRequest: handled, LostKeyID: lost}, keysLost
}
