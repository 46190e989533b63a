// Package imagebuild builds the project's container images without a Docker engine or a
// registry: deterministic one-layer OCI images (same inputs, same digest), multi-platform
// indexes, and OCI layout archives that `ctr images import` and `crane`/`oras` accept. The
// recipes of the project's images (the operator, the managed Redis of the local node, and
// single static programs such as the node's pause and CoreDNS) live beside the primitives.
package imagebuild
