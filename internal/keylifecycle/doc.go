// Package keylifecycle decides, as pure clock-injected functions, how a signing-key set moves
// through its states (next, active, retired, deleted) and when the operator must come back.
package keylifecycle
