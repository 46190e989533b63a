// Package release builds a release of the project into one folder, as `make release` and the
// e2e use it: the operator's image as an OCI archive (an index of every platform), the
// packaged Helm chart and install.yaml with that image pinned by digest, the kubectl-authsvc
// plugin's archives with a krew manifest, SBOMs of the image's binaries, and checksums.txt.
// Publishing (pushing the image and the chart to a registry, signing) is the maintainer's
// step elsewhere (docs/release.md).
package release
