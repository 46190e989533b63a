// Package cluster runs a local Kubernetes cluster of one real node on this machine, for
// `make dev` and the e2e: Kubernetes' own etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet and kube-proxy, containerd v2 with runc and the CNI bridge, and
// CoreDNS as the cluster DNS, with images the project builds and imports (no registry).
//
// The node lives in a network and mount namespace of its own, held by a small holder
// process: its bridges, veths, routes, nftables and iptables rules, and every mount the
// kubelet and containerd make vanish with the namespace. The holder watches the process that
// started it and, when that ends for any reason (Ctrl-C, a test's end, SIGKILL), kills every
// process of the node, removes its cgroups and its run folder, and restores the kernel
// settings the kubelet changed. Only one such node runs per machine, and it needs root.
package cluster
