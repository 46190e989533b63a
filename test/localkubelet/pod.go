package localkubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/hiringo/auth-operator/internal/atomicdir"
)

// podPhase is where a local pod stands.
type podPhase int

const (
	// podPending pods wait for their volumes' sources or the Services they address.
	podPending podPhase = iota
	// podRunning pods have their processes started.
	podRunning
	// podTerminating pods are being stopped; they are forgotten once stopped.
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

// localPod is one replica of a workload, run as local processes.
type localPod struct {
	namespace string
	name      string
	uid       string
	ownerKind string
	ownerName string
	ordinal   int
	hash      string
	template  corev1.PodTemplateSpec
	dir       string

	volumes        []*podVolume
	ports          map[string]map[int32]int
	initContainers []*containerRun
	containers     []*containerRun
	initDone       chan struct{}

	phase      podPhase
	waiting    string
	cancel     context.CancelFunc
	done       chan struct{}
	readySince time.Time
}

func (p *localPod) key() string { return p.namespace + "/" + p.name }

// ready reports whether the pod runs and every container passed its readiness probe.
func (p *localPod) ready() bool {
	if p.phase != podRunning || len(p.containers) == 0 {
		return false
	}
	select {
	case <-p.initDone:
	default:
		return false
	}
	for _, c := range p.containers {
		if !c.isReady() {
			return false
		}
	}
	return true
}

func (p *localPod) summary(now time.Time, minReady time.Duration) podSummary {
	ready := p.ready()
	return podSummary{
		Name:        p.name,
		Ordinal:     p.ordinal,
		Hash:        p.hash,
		Ready:       ready,
		Available:   ready && !p.readySince.IsZero() && now.Sub(p.readySince) >= minReady,
		Terminating: p.phase == podTerminating,
	}
}

// templateHash names a pod template, as the pod-template-hash label does: equal templates
// give equal hashes.
func templateHash(t corev1.PodTemplateSpec) string {
	data, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("marshalling a pod template cannot fail: %v", err))
	}
	h := fnv.New32a()
	_, _ = h.Write(data)
	return utilrand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

func newLocalPod(namespace, name, ownerKind, ownerName string, ordinal int, hash string, template corev1.PodTemplateSpec, podsDir string) *localPod {
	return &localPod{
		namespace: namespace,
		name:      name,
		uid:       utilrand.String(8),
		ownerKind: ownerKind,
		ownerName: ownerName,
		ordinal:   ordinal,
		hash:      hash,
		template:  *template.DeepCopy(),
		dir:       filepath.Join(podsDir, namespace, name),
		initDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
}

// allocatePorts gives every declared container port a free loopback port, once: a pod
// keeps its ports across container restarts.
func (p *localPod) allocatePorts() error {
	if p.ports != nil {
		return nil
	}
	ports := map[string]map[int32]int{}
	for _, c := range p.template.Spec.Containers {
		ports[c.Name] = map[int32]int{}
		for _, cp := range c.Ports {
			local, err := freeLoopbackPort()
			if err != nil {
				return err
			}
			ports[c.Name][cp.ContainerPort] = local
		}
	}
	p.ports = ports
	return nil
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
	// OwnerKind is "Deployment" or "StatefulSet"; OwnerName names the workload.
	OwnerKind  string
	OwnerName  string
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
	// Ports maps each declared containerPort to its local "127.0.0.1:port" address.
	Ports map[int32]string
	// Mounts maps each mount path to its local directory.
	Mounts  map[string]string
	LogFile string
}

func (p *localPod) info() PodInfo {
	out := PodInfo{
		Namespace: p.namespace, Name: p.name, OwnerKind: p.ownerKind, OwnerName: p.ownerName,
		Phase: p.phase.String(), Waiting: p.waiting, Ready: p.ready(), Dir: p.dir,
	}
	for _, c := range p.containers {
		c.mu.Lock()
		ci := ContainerInfo{
			Name: c.name, PID: c.pid, Running: c.running, Ready: c.running && c.ready,
			Restarts: c.restarts, LastExit: c.lastExit, LogFile: c.logPath,
			Command: append([]string{c.launch.Path}, c.launch.Args...),
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
