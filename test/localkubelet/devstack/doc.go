// Package devstack starts the whole auth-operator system on one machine: a local control
// plane with the CRDs, the operator as a process, and the local kubelet that runs the pods
// the operator creates. `make dev` and the end-to-end test both run it.
package devstack
