// Package controlplane holds nothing but the go.mod that pins the upstream control-plane
// binaries (kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler); each one
// is a main package in a sub-folder, and `make controlplane` builds them in one go build.
package controlplane
