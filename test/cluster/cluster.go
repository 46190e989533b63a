package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure a Cluster.
type Options struct {
	// RepoRoot is the auth-operator checkout, whose pause program the node's sandbox image runs.
	RepoRoot string
	// ControlPlaneDir holds the binaries `make controlplane containerd` builds: etcd,
	// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl,
	// coredns, containerd, containerd-shim-runc-v2 and ctr.
	ControlPlaneDir string
	// WorkDir receives the kubeconfig, the logs ("logs/"), the built images ("images/") and
	// the node's state ("run/", removed when the node stops).
	WorkDir string
	// Progress receives one line per step; nil discards them.
	Progress func(format string, args ...any)
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// Cluster is a running control plane and node.
type Cluster struct {
	// Config reaches the API server as a cluster administrator (system:masters).
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file of that administrator, for kubectl and helm.
	KubeconfigPath string

	opts   Options
	p      paths
	pki    pkiFiles
	holder *exec.Cmd
	// holderStdin is the pipe whose end tells the holder to tear the node down.
	holderStdin io.WriteCloser
	holderDone  chan error

	mu    sync.Mutex
	procs map[string]*process
	order []string

	stopProvisioner context.CancelFunc
	provisionerDone chan struct{}
}

// The node's programs, in the order they start (and stop in reverse).
const (
	procEtcd       = "etcd"
	procAPIServer  = "kube-apiserver"
	procKCM        = "kube-controller-manager"
	procScheduler  = "kube-scheduler"
	procContainerd = "containerd"
	procKubelet    = "kubelet"
	procKubeProxy  = "kube-proxy"
)

// requiredBinaries are what Options.ControlPlaneDir must hold.
var requiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
	"kubelet", "kube-proxy", "kubectl", "coredns", "containerd", "containerd-shim-runc-v2", "ctr"}

// hostPrograms are what the machine must have: Debian's runc and CNI plugins, util-linux's
// nsenter, iproute2, and nftables and iptables for kube-proxy and the kubelet.
var hostPrograms = []string{"runc", "nsenter", "ip", "nft", "iptables"}

// Start starts the control plane and the node, imports the images, and waits until the
// Node and the cluster DNS are Ready. On error everything already started is torn down.
// The program must call RunHolderIfAsked first.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	c := &Cluster{opts: opts, p: paths{work: opts.WorkDir}, procs: map[string]*process{}}
	if err := checkMachine(opts.ControlPlaneDir); err != nil {
		return nil, err
	}
	// A unix socket's path holds at most 107 bytes; containerd's ttrpc socket is the longest.
	if sock := c.p.containerdSocket() + ".ttrpc"; len(sock) > 107 {
		return nil, fmt.Errorf("the work directory %s is too deep: containerd's socket %s would pass the 107 bytes a unix socket path may have", opts.WorkDir, sock)
	}
	if err := clearStaleNode(opts.Progress); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and stopping: %w)", err, stopErr)
			}
		}
	}()
	if err := os.RemoveAll(c.p.run()); err != nil {
		return nil, fmt.Errorf("removing the previous run's folder: %w", err)
	}
	for _, d := range []string{c.p.logs(), c.p.config(), c.p.images(), c.p.bin(), c.p.cniConf(), c.p.cniData(), c.p.volumes(), c.p.volumePlugins(), c.p.etcd()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := resolvConfs(c.p); err != nil {
		return nil, err
	}
	if err := createCgroups(); err != nil {
		return nil, err
	}
	opts.progress("starting the node's namespaces")
	if err := c.startHolder(); err != nil {
		return nil, err
	}
	if err := connectNode(c.holder.Process.Pid); err != nil {
		return nil, err
	}
	// The node's own images (the pause program is built from source) build while the
	// control plane starts.
	type imagesResult struct {
		archives []string
		err      error
	}
	nodeImagesBuilt := make(chan imagesResult, 1)
	go func() {
		archives, err := nodeImages(ctx, opts.RepoRoot, opts.ControlPlaneDir, c.p.images())
		nodeImagesBuilt <- imagesResult{archives, err}
	}()
	defer func() {
		if err != nil {
			<-nodeImagesBuilt
		}
	}()
	if c.pki, err = writePKI(c.p); err != nil {
		return nil, fmt.Errorf("writing the node's certificates: %w", err)
	}
	if err := c.startControlPlane(ctx); err != nil {
		return nil, err
	}
	opts.progress("starting containerd, importing the images")
	if err := c.startContainerd(ctx); err != nil {
		return nil, err
	}
	own := <-nodeImagesBuilt
	nodeImagesBuilt <- own
	if own.err != nil {
		return nil, own.err
	}
	if err := c.ImportImages(ctx, own.archives...); err != nil {
		return nil, err
	}
	opts.progress("starting the kubelet and kube-proxy")
	if err := c.startNode(ctx); err != nil {
		return nil, err
	}
	opts.progress("starting the cluster DNS")
	if err := c.startAddons(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// checkMachine tells what the node needs that the machine lacks.
func checkMachine(controlPlane string) error {
	if os.Geteuid() != 0 {
		return errors.New("the local node needs root (it runs containerd, the kubelet and kube-proxy in namespaces of its own)")
	}
	for _, b := range requiredBinaries {
		if _, err := os.Stat(filepath.Join(controlPlane, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run `make controlplane containerd` first (it builds them from the Go module proxy)", b, controlPlane)
		}
	}
	for _, p := range hostPrograms {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s is not on PATH: run `make node-packages` (Debian's runc, containernetworking-plugins, iproute2, nftables, iptables)", p)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			return fmt.Errorf("CNI plugin %s not in %s: run `make node-packages` (Debian's containernetworking-plugins)", plugin, cniBinDir)
		}
	}
	return nil
}

// clearStaleNode refuses to start beside a running node, and clears what a node whose
// holder was killed too left: its processes and cgroups (its namespaces go with them).
func clearStaleNode(progress func(string, ...any)) error {
	if pid, ok := holderRunning(); ok {
		return fmt.Errorf("a local node already runs on this machine (holder pid %d, `make dev` or an e2e run): stop it first; only one runs at a time", pid)
	}
	if _, err := os.Stat(filepath.Join(cgroupFS, trackingHierarchy, cgroupName)); err == nil {
		if progress != nil {
			progress("clearing what a killed local node left")
		}
		if err := killCgroupProcesses(0, 30*time.Second); err != nil {
			return err
		}
		if err := removeCgroups(10 * time.Second); err != nil {
			return err
		}
	}
	if err := restoreStaleHost(); err != nil {
		return fmt.Errorf("undoing what a killed local node changed on the host: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for hostLinkExists() {
		if time.Now().After(deadline) {
			return fmt.Errorf("the host interface %s of an earlier node is still there", hostVethName)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// startHolder starts the holder of the node's namespaces (this executable, re-executed) in
// a session of its own, so that no signal meant for the starter's process group reaches it,
// and waits until it is ready.
func (c *Cluster) startHolder() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.p.logs(), "holder.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// A name of its own, so that `pkill -f` of the starter's name spares it.
	cmd := &exec.Cmd{Path: self, Args: []string{"auth-operator-node-holder"}}
	cmd.Env = append(os.Environ(), holderEnv+"="+c.p.work)
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:       true,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the node's holder: %w", err)
	}
	c.holder, c.holderStdin = cmd, stdin
	c.holderDone = make(chan error, 1)
	if err := joinCgroup(holderCgroup, cmd.Process.Pid); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != holderReady {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
		c.holderDone <- cmd.Wait()
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("the node's holder failed at start (%w): see %s", err, filepath.Join(c.p.logs(), "holder.log"))
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the node's holder was not ready within 30s: see %s", filepath.Join(c.p.logs(), "holder.log"))
	}
}

// supervised are the node programs that are started again when they exit, as a node's
// service manager does: the kubelet exits when it finds no container runtime at start.
var supervised = map[string]bool{procKubelet: true, procContainerd: true, procKubeProxy: true}

// start runs a node program and remembers it.
func (c *Cluster) start(name string, args ...string) (*process, error) {
	proc, err := startProcess(c.holder.Process.Pid, c.p.logs(), name, filepath.Join(c.opts.ControlPlaneDir, name), supervised[name], args...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.procs[name]; !ok {
		c.order = append(c.order, name)
	}
	c.procs[name] = proc
	return proc, nil
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// and waits until the controllers have published the root CA and made the default
// ServiceAccount, which every pod needs.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	c.opts.progress("starting etcd and kube-apiserver")
	peer := "http://127.0.0.1:" + strconv.Itoa(etcdPort+1)
	if _, err := c.start(procEtcd,
		"--data-dir="+c.p.etcd(),
		"--listen-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--advertise-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return err
	}
	api, err := c.start(procAPIServer, apiServerArgs(c.p, c.pki)...)
	if err != nil {
		return err
	}
	if err := c.writeAdminKubeconfig(); err != nil {
		return err
	}
	if err := api.waitFor(ctx, "/readyz", 2*time.Minute, c.apiReady); err != nil {
		return err
	}
	c.opts.progress("starting kube-controller-manager and kube-scheduler")
	if _, err := c.start(procKCM,
		"--kubeconfig="+c.pki.kubeconfigs["kube-controller-manager"],
		"--authentication-kubeconfig="+c.pki.kubeconfigs["kube-controller-manager"],
		"--authorization-kubeconfig="+c.pki.kubeconfigs["kube-controller-manager"],
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.pki.serviceAccountPrivate,
		"--root-ca-file="+c.pki.ca,
		"--cluster-signing-cert-file="+c.pki.ca,
		"--cluster-signing-key-file="+c.pki.caKey,
		"--flex-volume-plugin-dir="+c.p.volumePlugins(),
	); err != nil {
		return err
	}
	sched, err := c.start(procScheduler,
		"--kubeconfig="+c.pki.kubeconfigs["kube-scheduler"],
		"--authentication-kubeconfig="+c.pki.kubeconfigs["kube-scheduler"],
		"--authorization-kubeconfig="+c.pki.kubeconfigs["kube-scheduler"],
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
	)
	if err != nil {
		return err
	}
	kube, err := c.Client()
	if err != nil {
		return err
	}
	return sched.waitFor(ctx, "the default ServiceAccount and kube-root-ca.crt", 90*time.Second, func(ctx context.Context) error {
		if err := kube.Get(ctx, types.NamespacedName{Namespace: "default", Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}); err != nil {
			return err
		}
		return kube.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
	})
}

// writeAdminKubeconfig writes the administrator's kubeconfig and loads its Config.
func (c *Cluster) writeAdminKubeconfig() error {
	data, err := os.ReadFile(c.pki.kubeconfigs["admin"])
	if err != nil {
		return err
	}
	c.KubeconfigPath = c.p.kubeconfig()
	if err := os.WriteFile(c.KubeconfigPath, data, 0o600); err != nil {
		return err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	c.Config = cfg
	return nil
}

// apiReady asks the API server's /readyz as the administrator.
func (c *Cluster) apiReady(ctx context.Context) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	cert, err := tls.X509KeyPair(c.pki.admin.cert, c.pki.admin.key)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Config.Host+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("/readyz: %s: %s", resp.Status, body)
	}
	return nil
}

// startContainerd writes containerd's and the CNI's configuration, starts containerd and
// waits until it answers.
func (c *Cluster) startContainerd(ctx context.Context) error {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	conf := filepath.Join(c.p.config(), "containerd.toml")
	if err := os.WriteFile(conf, []byte(containerdConfig(c.p, runc)), 0o644); err != nil {
		return err
	}
	cni, err := cniConfig(c.p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.p.cniConf(), "10-auth-operator-node.conflist"), cni, 0o644); err != nil {
		return err
	}
	return c.runContainerd(ctx)
}

func (c *Cluster) runContainerd(ctx context.Context) error {
	proc, err := c.start(procContainerd, "--config", filepath.Join(c.p.config(), "containerd.toml"))
	if err != nil {
		return err
	}
	return proc.waitFor(ctx, "its socket", time.Minute, func(ctx context.Context) error {
		_, err := c.ctr(ctx, "version")
		return err
	})
}

// startNode writes the kubelet's and kube-proxy's configuration, starts both and waits
// until the Node is Ready.
func (c *Cluster) startNode(ctx context.Context) error {
	kubeletConf := filepath.Join(c.p.config(), "kubelet.yaml")
	if err := os.WriteFile(kubeletConf, []byte(kubeletConfig(c.p, c.pki.ca, c.pki.kubeletServerCert, c.pki.kubeletServerKey)), 0o644); err != nil {
		return err
	}
	proxyConf := filepath.Join(c.p.config(), "kube-proxy.yaml")
	if err := os.WriteFile(proxyConf, []byte(kubeProxyConfig(c.pki.kubeconfigs["kube-proxy"])), 0o644); err != nil {
		return err
	}
	kubelet, err := c.runKubelet()
	if err != nil {
		return err
	}
	if _, err := c.start(procKubeProxy, "--config="+proxyConf); err != nil {
		return err
	}
	return kubelet.waitFor(ctx, "a Ready Node", 2*time.Minute, c.nodeReady)
}

func (c *Cluster) runKubelet() (*process, error) {
	return c.start(procKubelet,
		"--config="+filepath.Join(c.p.config(), "kubelet.yaml"),
		"--kubeconfig="+c.pki.kubeconfigs["kubelet"],
		"--root-dir="+c.p.kubeletRoot(),
		"--hostname-override="+NodeName,
		"--node-ip="+NodeIP,
		"--v=1",
	)
}

// nodeReady checks that the Node reports Ready.
func (c *Cluster) nodeReady(ctx context.Context) error {
	kube, err := c.Client()
	if err != nil {
		return err
	}
	var node corev1.Node
	if err := kube.Get(ctx, types.NamespacedName{Name: NodeName}, &node); err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("the Node %s: Ready=%s %s: %s", NodeName, cond.Status, cond.Reason, cond.Message)
		}
	}
	return fmt.Errorf("the Node %s has no Ready condition yet", NodeName)
}

// startAddons creates the cluster DNS and the StorageClass, starts the provisioner, and
// waits until the DNS is Ready.
func (c *Cluster) startAddons(ctx context.Context) error {
	kube, err := c.Client()
	if err != nil {
		return err
	}
	if err := createAddons(ctx, kube); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	c.stopProvisioner = cancel
	c.provisionerDone = make(chan struct{})
	logPath := filepath.Join(c.p.logs(), "provisioner.log")
	go func() {
		defer close(c.provisionerDone)
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return
		}
		defer f.Close()
		runProvisioner(pctx, kube, c.p.volumes(), func(format string, args ...any) {
			fmt.Fprintf(f, time.Now().Format(time.RFC3339)+" "+format+"\n", args...)
		})
	}()
	c.mu.Lock()
	kubelet := c.procs[procKubelet]
	c.mu.Unlock()
	return kubelet.waitFor(ctx, "a Ready cluster DNS", 2*time.Minute, func(ctx context.Context) error {
		var pods corev1.PodList
		if err := kube.List(ctx, &pods, client.InNamespace(dnsNamespace), client.MatchingLabels{"k8s-app": "kube-dns"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		return errors.New("no Ready CoreDNS pod")
	})
}

// Client returns a client of the API server as the administrator, with the core and
// AuthService-free scheme; callers add their own types with NewClient.
func (c *Cluster) Client() (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(c.Config, client.Options{Scheme: scheme})
}

// LogsDir holds the log of every program of the node.
func (c *Cluster) LogsDir() string { return c.p.logs() }

// Stop kills the node's programs (kube-proxy and the kubelet first, etcd last), then tells
// the holder to tear the node down and waits until it has: no process, mount, cgroup, network
// or run folder of the node is left. Logs stay in the work directory.
func (c *Cluster) Stop() error {
	var errs []error
	if c.stopProvisioner != nil {
		c.stopProvisioner()
		<-c.provisionerDone
		c.stopProvisioner = nil
	}
	c.mu.Lock()
	order := append([]string(nil), c.order...)
	procs := c.procs
	c.mu.Unlock()
	// Nothing of the node outlives it, so its programs need no graceful stop: the holder
	// kills what they started (the containers' shims) and removes what they left.
	for i := len(order) - 1; i >= 0; i-- {
		procs[order[i]].kill()
	}
	if c.holder != nil {
		c.opts.progress("tearing the node down")
		_ = c.holderStdin.Close()
		select {
		case err := <-c.holderDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("the node's teardown failed (%w): see %s", err, filepath.Join(c.p.logs(), "holder.log")))
			}
		case <-time.After(90 * time.Second):
			_ = c.holder.Process.Kill()
			errs = append(errs, fmt.Errorf("the node's teardown did not end within 90s: see %s", filepath.Join(c.p.logs(), "holder.log")))
		}
		c.holder = nil
	} else if err := removeCgroups(10 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if c.KubeconfigPath != "" {
		if err := os.Remove(c.KubeconfigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
