package cluster

import "path/filepath"

// The node's addresses. The host reaches the node through a veth pair (hostVethIP on the
// host, NodeIP in the node), and reaches Services and pods through routes over it.
const (
	hostVethName = "aonode0"
	nodeVethName = "eth0"
	hostVethIP   = "10.250.0.1"
	// NodeIP is the node's address: the kubelet's, the API server's (advertised to pods as
	// the kubernetes Service's endpoint) and the one the host reaches the API server at.
	NodeIP      = "10.250.0.2"
	vethPrefix  = 30
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/16"
	// APIServerServiceIP is the kubernetes Service's ClusterIP: the first of ServiceCIDR.
	APIServerServiceIP = "10.96.0.1"
	// DNSServiceIP is the cluster DNS Service's ClusterIP, which every pod's resolv.conf names.
	DNSServiceIP  = "10.96.0.10"
	ClusterDomain = "cluster.local"
	apiServerPort = 6443
	etcdPort      = 2379
	// NodeName is the name of the one Node.
	NodeName = "auth-operator-node"
	// cgroupName is the cgroup of every process of the node (and the kubelet's cgroup root)
	// in each cgroup v1 hierarchy: one name per machine, which is also the lock that lets only
	// one node run.
	cgroupName = "auth-operator-node"
	// cniBridge is the bridge the pods' veths join.
	cniBridge = "aocni0"
)

// paths are the folders and files of a running node under its work directory.
type paths struct {
	work string
}

// run is the folder the node's state lives in; it is removed when the node stops.
func (p paths) run() string            { return filepath.Join(p.work, "run") }
func (p paths) logs() string           { return filepath.Join(p.work, "logs") }
func (p paths) bin() string            { return filepath.Join(p.work, "bin") }
func (p paths) images() string         { return filepath.Join(p.work, "images") }
func (p paths) kubeconfig() string     { return filepath.Join(p.work, "kubeconfig") }
func (p paths) pki() string            { return filepath.Join(p.run(), "pki") }
func (p paths) config() string         { return filepath.Join(p.run(), "config") }
func (p paths) etcd() string           { return filepath.Join(p.run(), "etcd") }
func (p paths) containerdRoot() string { return filepath.Join(p.run(), "containerd", "root") }
func (p paths) containerdState() string {
	return filepath.Join(p.run(), "containerd", "state")
}
func (p paths) containerdSocket() string { return filepath.Join(p.run(), "containerd.sock") }
func (p paths) runcRoot() string         { return filepath.Join(p.run(), "runc") }
func (p paths) cniConf() string          { return filepath.Join(p.run(), "cni", "net.d") }
func (p paths) cniData() string          { return filepath.Join(p.run(), "cni", "networks") }
func (p paths) kubeletRoot() string      { return filepath.Join(p.run(), "kubelet") }
func (p paths) volumePlugins() string    { return filepath.Join(p.run(), "volume-plugins") }
func (p paths) volumes() string          { return filepath.Join(p.run(), "volumes") }

// varLog is bound over /var/log in the node, where the kubelet keeps the pods' logs and
// the links to them (/var/log/pods, /var/log/containers).
func (p paths) varLog() string { return filepath.Join(p.run(), "var-log") }

// varLibCNI is bound over /var/lib/cni in the node: libcni's result cache, whose folder
// containerd cannot move.
func (p paths) varLibCNI() string { return filepath.Join(p.run(), "var-lib-cni") }

// nodeResolvConf is bound over /etc/resolv.conf in the node: its own processes (the API
// server, which fetches an OIDC issuer's discovery) resolve Service names through the
// cluster DNS. podResolvConf is the kubelet's resolvConf: no host search domains or servers.
func (p paths) nodeResolvConf() string { return filepath.Join(p.config(), "node-resolv.conf") }
func (p paths) podResolvConf() string  { return filepath.Join(p.config(), "pod-resolv.conf") }
