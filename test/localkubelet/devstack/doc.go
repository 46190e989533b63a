// Package devstack starts the whole auth-operator system on one machine: etcd and
// kube-apiserver with the CRDs, kube-controller-manager and kube-scheduler, the operator as a
// process, and the local kubelet that runs the pods bound to its Node. `make dev` and the
// end-to-end test both run it.
package devstack
