// Package version says which build of the project a binary is: the release version stamped
// at link time, and the commit and Go version the Go toolchain records in every binary.
package version
