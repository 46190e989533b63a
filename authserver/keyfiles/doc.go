// Package keyfiles defines the on-disk layout of a signing key set: the files that the
// operator writes into the signing-key Secret and that the auth server reads from the
// directory where that Secret is mounted. It is the one contract between the two sides;
// docs/keys-layout.md describes it for people.
package keyfiles
