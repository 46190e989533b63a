// Command dev runs the whole auth-operator system on one machine (`make dev`): a local
// control plane, the operator, the sample AuthService and its pods run by the local
// kubelet, until Ctrl-C.
package main
