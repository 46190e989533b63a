// Command dev runs the whole auth-operator system on one machine (`make dev`): a local
// control plane of Kubernetes' own binaries, the operator, the sample AuthService and the
// pods the scheduler binds to the local kubelet's Node, until Ctrl-C, SIGTERM or the death
// of the make that started it.
package main
