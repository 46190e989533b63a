// Package keydomain defines a signing-key set as values: its keys, their lifecycle states
// and the pure questions asked of a set (which key signs, which are published at a time,
// whether the set keeps its invariants). It does no I/O and knows no file format; the
// layout package keyfiles encodes these values, the planner keylifecycle moves them along
// their lifecycle. It is public because keyfiles, which outside token tooling reads, is
// built of these types.
package keydomain
