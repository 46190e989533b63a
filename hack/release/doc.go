// Command release builds a release of the project into dist/release (`make release
// VERSION=vX.Y.Z`): see internal/release and docs/release.md.
package main
