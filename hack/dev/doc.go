// Command dev runs the whole auth-operator system on one machine (`make dev`): a local
// cluster of Kubernetes' own binaries with one real node (kubelet, containerd, runc, CNI,
// CoreDNS), the project's images built and imported, the operator as a local process, and
// the sample AuthService, whose auth-server, issuer and Redis pods run in containers. It
// runs until Ctrl-C, SIGTERM or the death of the make that started it, and leaves nothing
// on the host when it ends (see test/cluster).
package main
