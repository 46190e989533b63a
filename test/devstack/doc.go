// Package devstack runs the project on the local cluster of test/cluster, for `make dev` and
// the e2e: it builds the project's images and imports them, installs the CRDs, runs the
// operator (as a process for the edit loop, or leaves its install to the caller), and
// answers what a user asks of an AuthService: is it Ready, and where its Services are.
package devstack
