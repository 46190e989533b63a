package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Images the node runs that are not the project's: containerd's pinned sandbox image and
// the cluster DNS, both built by the stack from Go sources.
const (
	PauseImage   = "localhost/auth-operator-node/pause:v1"
	CoreDNSImage = "localhost/auth-operator-node/coredns:v1.14.7"
)

// cniBinDir holds Debian's containernetworking-plugins (bridge, host-local, loopback, portmap).
const cniBinDir = "/usr/lib/cni"

// containerdConfig is containerd's configuration (version 4, where the sockets are set on
// the server plugins): every path under the node's run folder, runc from Debian, the CNI
// bridge, the pause image pinned, and restrict_oom_score_adj since root here lacks
// CAP_SYS_RESOURCE (without it every sandbox fails with "can't get final child's PID from
// pipe: EOF").
func containerdConfig(p paths, runc string) string {
	return fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q
imports = []

[plugins.'io.containerd.server.v1.grpc']
  address = %[3]q
[plugins.'io.containerd.server.v1.ttrpc']
  address = %[4]q
[plugins.'io.containerd.server.v1.debug']
  address = ''

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[5]q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_criu = false
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[6]q
        Root = %[7]q
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[8]q]
    conf_dir = %[9]q

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.internal.v1.opt']
  path = %[10]q

[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = %[11]q
`, p.containerdRoot(), p.containerdState(), p.containerdSocket(), p.containerdSocket()+".ttrpc",
		PauseImage, runc, p.runcRoot(), cniBinDir, p.cniConf(),
		filepath.Join(p.run(), "containerd", "opt"), filepath.Join(p.run(), "containerd", "image-verifier"))
}

// cniConfig is the pods' network: a bridge that is the pods' gateway (hairpin on, so a pod
// reaches itself through its Service), host-local addresses from PodCIDR kept under the run
// folder, and portmap for hostPorts. No masquerade: nothing leaves the node.
func cniConfig(p paths) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "auth-operator-node",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      cniBridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": p.cniData(),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// kubeletConfig is the kubelet's KubeletConfiguration: cgroupfs under the node's cgroup
// (the host is cgroup v1, hence failCgroupV1: false), containerd's socket, the cluster DNS,
// webhook authentication and authorization against the API server, every folder under the
// run folder, imported images never garbage-collected, and a Secret sync period of 10 s.
func kubeletConfig(p paths, caFile, serverCert, serverKey string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%[1]s
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[4]s
tlsPrivateKeyFile: %[5]s
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[6]s
authorization:
  mode: Webhook
clusterDNS: [%[7]s]
clusterDomain: %[8]s
resolvConf: %[9]s
syncFrequency: 10s
fileCheckFrequency: 20s
nodeStatusUpdateFrequency: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
failSwapOn: true
volumePluginDir: %[10]s
podLogsDir: /var/log/pods
serializeImagePulls: false
maxPods: 110
makeIPTablesUtilChains: true
protectKernelDefaults: false
localStorageCapacityIsolation: true
`, cgroupName, p.containerdSocket(), NodeIP, serverCert, serverKey, caFile,
		DNSServiceIP, ClusterDomain, p.podResolvConf(), p.volumePlugins())
}

// kubeProxyConfig is kube-proxy's configuration: nftables mode, the node's address, and no
// change to the conntrack settings, which are the machine's.
func kubeProxyConfig(kubeconfigPath string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
bindAddress: %[3]s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %[4]s
nodePortAddresses: ["%[3]s/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
`, kubeconfigPath, NodeName, NodeIP, PodCIDR)
}

// resolvConfs writes the node's and the pods' resolv.conf.
func resolvConfs(p paths) error {
	node := fmt.Sprintf("nameserver %s\nsearch svc.%s %s\noptions ndots:5 timeout:1 attempts:2\n", DNSServiceIP, ClusterDomain, ClusterDomain)
	if err := os.WriteFile(p.nodeResolvConf(), []byte(node), 0o644); err != nil {
		return err
	}
	// The kubelet adds the cluster DNS and the search domains; the host's own are left out.
	return os.WriteFile(p.podResolvConf(), []byte("options ndots:5\n"), 0o644)
}

// apiServerArgs are kube-apiserver's flags.
func apiServerArgs(p paths, f pkiFiles) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=" + NodeIP,
		"--advertise-address=" + NodeIP,
		"--secure-port=" + strconv.Itoa(apiServerPort),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--client-ca-file=" + f.ca,
		"--tls-cert-file=" + f.apiServerCert,
		"--tls-private-key-file=" + f.apiServerKey,
		"--kubelet-client-certificate=" + f.apiServerKubeletClientCert,
		"--kubelet-client-key=" + f.apiServerKubeletClientKey,
		"--kubelet-certificate-authority=" + f.ca,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
		"--service-account-key-file=" + f.serviceAccountPublic,
		"--service-account-signing-key-file=" + f.serviceAccountPrivate,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=false",
		"--profiling=false",
		"--event-ttl=1h",
	}
}
