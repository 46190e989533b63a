// Command image builds the operator's image (`make image`): the manager and the auth server,
// static, for the given platforms, as an OCI layout archive that `ctr images import`,
// `crane push` or `oras` take. It is the one recipe `make dev`, the e2e and `make release`
// share (internal/imagebuild).
package main
