package localkubelet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hiringo/auth-operator/internal/atomicdir"
)

// podPhase is where a local pod stands.
type podPhase int

const (
	// podPending pods wait for their volumes' sources or the Services they address.
	podPending podPhase = iota
	// podRunning pods have their processes started.
	podRunning
	// podTerminating pods are being stopped; once stopped, their Pod object is deleted and
	// they are forgotten.
	podTerminating
)

func (p podPhase) String() string {
	switch p {
	case podPending:
		return "Pending"
	case podRunning:
		return "Running"
	default:
		return "Terminating"
	}
}

// localPod is a Pod bound to the runner's node, run as local processes.
type localPod struct {
	uid types.UID
	// pod is the latest copy of the Pod object the runner has seen.
	pod *corev1.Pod
	dir string
	// ip is the address the runner gave the pod in the node's pod CIDR: what the Pod's
	// status (and so the EndpointSlices) shows. Nothing listens on it; the pod's declared
	// ports are reached at their loopback ports (ports).
	ip net.IP

	volumes        []*podVolume
	ports          map[string]map[int32]int
	initContainers []*containerRun
	containers     []*containerRun
	initDone       chan struct{}

	phase   podPhase
	waiting string
	// createdAt is when the runner first saw the pod; startedAt when its processes began.
	createdAt time.Time
	startedAt time.Time
	cancel    context.CancelFunc
	done      chan struct{}
	// deleted is set once the Pod object was deleted for good (or was already gone).
	deleted bool
}

func (p *localPod) key() string { return p.pod.Namespace + "/" + p.pod.Name }

func (p *localPod) initialized() bool {
	select {
	case <-p.initDone:
		return true
	default:
		return false
	}
}

// ready reports whether the pod runs and every container passed its readiness probe.
func (p *localPod) ready() bool {
	if p.phase != podRunning || len(p.containers) == 0 || !p.initialized() {
		return false
	}
	for _, c := range p.containers {
		if !c.isReady() {
			return false
		}
	}
	return true
}

func newLocalPod(pod *corev1.Pod, ip net.IP, podsDir string, now time.Time) *localPod {
	return &localPod{
		uid:       pod.UID,
		pod:       pod.DeepCopy(),
		dir:       filepath.Join(podsDir, pod.Namespace, pod.Name),
		ip:        ip,
		createdAt: now,
		initDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
}

// allocatePorts gives every declared container port a loopback port, once: a pod
// keeps its ports across container restarts. portFor picks each port.
func (p *localPod) allocatePorts(portFor func(pod *corev1.Pod, containerPort int32) (int, error)) error {
	if p.ports != nil {
		return nil
	}
	ports := map[string]map[int32]int{}
	for _, c := range p.pod.Spec.Containers {
		ports[c.Name] = map[int32]int{}
		for _, cp := range c.Ports {
			local, err := portFor(p.pod, cp.ContainerPort)
			if err != nil {
				return err
			}
			ports[c.Name][cp.ContainerPort] = local
		}
	}
	p.ports = ports
	return nil
}

// localPortOf returns the loopback port that stands for a declared port of the pod.
func (p *localPod) localPortOf(containerPort int32) (int, bool) {
	for _, byPort := range p.ports {
		if local, ok := byPort[containerPort]; ok {
			return local, true
		}
	}
	return 0, false
}

// freeLoopbackPort asks the kernel for a free port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// loopbackPortFree reports whether nothing listens on 127.0.0.1:port.
func loopbackPortFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// dnsNameOf is the DNS name a pod has under a headless Service
// ("HOSTNAME.SUBDOMAIN.NAMESPACE"), "" when it has none.
func dnsNameOf(pod *corev1.Pod) string {
	if pod.Spec.Hostname == "" || pod.Spec.Subdomain == "" {
		return ""
	}
	return podDNSName(pod.Spec.Hostname, pod.Spec.Subdomain, pod.Namespace)
}

// podDNSName is the name of pod hostname under the headless Service subdomain of
// namespace, as namedPorts keys it.
func podDNSName(hostname, subdomain, namespace string) string {
	return hostname + "." + subdomain + "." + namespace
}

// mountsOf maps a container's volume mounts to the pod's local volume directories.
func (p *localPod) mountsOf(c corev1.Container) ([]PathMapping, error) {
	byName := map[string]*podVolume{}
	for _, v := range p.volumes {
		byName[v.name] = v
	}
	var out []PathMapping
	for _, m := range c.VolumeMounts {
		v, ok := byName[m.Name]
		if !ok {
			return nil, fmt.Errorf("container %s mounts unknown volume %q", c.Name, m.Name)
		}
		local := v.localPath
		if m.SubPath != "" {
			if err := atomicdir.ValidatePath(m.SubPath); err != nil {
				return nil, fmt.Errorf("container %s: subPath: %w", c.Name, err)
			}
			local = filepath.Join(local, m.SubPath)
		}
		out = append(out, PathMapping{ContainerPath: m.MountPath, LocalPath: local})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPath < out[j].ContainerPath })
	return out, nil
}

// PodInfo describes a local pod.
type PodInfo struct {
	Namespace string
	Name      string
	UID       types.UID
	Labels    map[string]string
	// IP is the pod's address as its status shows it.
	IP         string
	Phase      string
	Waiting    string
	Ready      bool
	Dir        string
	Containers []ContainerInfo
}

// ContainerInfo describes a container of a local pod.
type ContainerInfo struct {
	Name     string
	PID      int
	Running  bool
	Ready    bool
	Restarts int
	LastExit string
	// Command is the program and arguments the container runs, after every rewrite.
	Command []string
	// Env is the container's environment, after every rewrite.
	Env []EnvVar
	// Ports maps each declared containerPort to its local "127.0.0.1:port" address.
	Ports map[int32]string
	// Mounts maps each mount path to its local directory.
	Mounts  map[string]string
	LogFile string
}

func (p *localPod) info() PodInfo {
	out := PodInfo{
		Namespace: p.pod.Namespace, Name: p.pod.Name, UID: p.uid, Labels: p.pod.Labels, IP: p.ip.String(),
		Phase: p.phase.String(), Waiting: p.waiting, Ready: p.ready(), Dir: p.dir,
	}
	for _, c := range p.containers {
		c.mu.Lock()
		ci := ContainerInfo{
			Name: c.name, PID: c.pid, Running: c.running, Ready: c.running && c.ready,
			Restarts: c.restarts, LastExit: c.lastExit, LogFile: c.logPath,
			Command: append([]string{c.launch.Path}, c.launch.Args...),
			Env:     append([]EnvVar(nil), c.launch.Env...),
			Ports:   map[int32]string{}, Mounts: map[string]string{},
		}
		c.mu.Unlock()
		for cp, local := range c.ports {
			ci.Ports[cp] = net.JoinHostPort("127.0.0.1", fmt.Sprint(local))
		}
		for _, m := range c.mounts {
			ci.Mounts[m.ContainerPath] = m.LocalPath
		}
		out.Containers = append(out.Containers, ci)
	}
	return out
}
