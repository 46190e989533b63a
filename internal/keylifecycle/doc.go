// Package keylifecycle decides, as pure clock-injected functions, how a signing-key set moves
// through its states (next, active, retired, deleted), which manual rotation request a pass
// handles, when a set replaces lost keys, and when the operator must come back. The
// operator only reads the stored set and its record, asks Next and writes what it returns.
package keylifecycle
