// Package keyfiles defines the on-disk layout of a signing key set: the files that the
// operator writes into the signing-key Secret and that the auth server reads from the
// directory where that Secret is mounted (manifest, PEM files, the kubelet's "..data"
// folder swap) and the JWKS document of a set. It is the one contract between the two
// sides; docs/keys-layout.md describes it for people.
//
// The package is public on purpose: token tooling outside this repository reads key sets
// through it. The key set's values (keydomain.Key, State, Set) are keydomain's, which
// does no I/O; writing a set into a directory, which only local runs and tests do, is
// internal/devkeys'.
package keyfiles
