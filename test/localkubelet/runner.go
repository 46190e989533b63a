package localkubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceAccountMountPath is where the ServiceAccount admission plugin mounts the
// projected token volume, and where rest.InClusterConfig reads it.
const serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// Config configures a Runner.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// WorkDir holds the pods' directories ("pods/") and the persistent volumes the runner
	// provisions ("volumes/"), which outlive the pods.
	WorkDir string
	// Images maps a container image to a local program.
	Images ImageResolver
	// NodeName is the Node the runner registers and whose pods it runs; default
	// "localkubelet".
	NodeName string
	// PodCIDR is the range the pods' addresses come from; default 10.244.0.0/24.
	PodCIDR string
	// KubeletVersion is the version the Node reports; default v0.0.0-localkubelet.
	KubeletVersion string
	// Logger receives the runner's own messages; the default discards them.
	Logger *slog.Logger
	// ProcessOutput, when set, also receives every container's output, each line behind
	// "pod/container | ". Output always goes to a log file per container in the pod's
	// directory.
	ProcessOutput io.Writer
	// RestartBackoff is the delay before the second restart of a crashing container; it
	// doubles up to MaxRestartBackoff. The first restart is immediate. Defaults 1s and 30s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// MaxGracePeriod caps a pod's termination grace period; default 10s.
	MaxGracePeriod time.Duration
	// ResyncPeriod is how often the runner re-checks everything without an event; default 1s.
	ResyncPeriod time.Duration
}

// Runner is a node agent: it registers a Node and runs the Pods the scheduler binds to
// it as local processes, writing their status back; it also provisions the node's
// persistent volumes and stands for kube-proxy (a loopback listener per Service port,
// in front of the ready endpoints of the Service's EndpointSlices).
type Runner struct {
	cfg       Config
	cache     cache.Cache
	client    client.Client
	sup       *processSupervisor
	ips       *ipPool
	apiServer *url.URL
	kick      chan struct{}
	synced    chan struct{}

	mu       sync.Mutex
	pods     map[types.UID]*localPod
	services map[string]*corev1.Service
	proxies  map[string]map[int32]*servicePortProxy
	// namedPorts keeps the loopback port of each declared port of a pod with a DNS name
	// (a StatefulSet's pod), keyed by name and port (namedPortKey), for the pods that
	// replace it: the others' configuration holds the address its name resolved to, which
	// in a cluster keeps resolving to the pod of that name.
	namedPorts map[string]int
}

// New checks cfg and builds a Runner; Run starts it.
func New(cfg Config) (*Runner, error) {
	if cfg.RESTConfig == nil || cfg.WorkDir == "" || cfg.Images == nil {
		return nil, errors.New("localkubelet: RESTConfig, WorkDir and Images are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.NodeName = cmpOr(cfg.NodeName, "localkubelet")
	cfg.PodCIDR = cmpOr(cfg.PodCIDR, "10.244.0.0/24")
	cfg.KubeletVersion = cmpOr(cfg.KubeletVersion, "v0.0.0-localkubelet")
	cfg.RestartBackoff = cmpOr(cfg.RestartBackoff, time.Second)
	cfg.MaxRestartBackoff = cmpOr(cfg.MaxRestartBackoff, 30*time.Second)
	cfg.MaxGracePeriod = cmpOr(cfg.MaxGracePeriod, 10*time.Second)
	cfg.ResyncPeriod = cmpOr(cfg.ResyncPeriod, time.Second)
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("localkubelet: work directory: %w", err)
	}
	cfg.WorkDir = abs
	ips, err := newIPPool(cfg.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("localkubelet: %w", err)
	}
	apiServer, err := url.Parse(cfg.RESTConfig.Host)
	if err != nil || apiServer.Port() == "" {
		return nil, fmt.Errorf("localkubelet: the API server address %q has no port", cfg.RESTConfig.Host)
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("localkubelet: scheme: %w", err)
	}
	c, err := cache.New(cfg.RESTConfig, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("localkubelet: cache: %w", err)
	}
	cl, err := client.New(cfg.RESTConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("localkubelet: client: %w", err)
	}
	r := &Runner{
		cfg: cfg, cache: c, client: cl, ips: ips, apiServer: apiServer,
		kick:       make(chan struct{}, 1),
		synced:     make(chan struct{}),
		pods:       map[types.UID]*localPod{},
		services:   map[string]*corev1.Service{},
		proxies:    map[string]map[int32]*servicePortProxy{},
		namedPorts: map[string]int{},
	}
	r.sup = &processSupervisor{
		log: cfg.Logger, output: cfg.ProcessOutput, outputMu: &sync.Mutex{},
		initialBackoff: cfg.RestartBackoff, maxBackoff: cfg.MaxRestartBackoff,
		maxGrace: cfg.MaxGracePeriod, changed: r.poke,
	}
	return r, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// poke asks the sync loop for a pass soon.
func (r *Runner) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Synced is closed once the Node is registered, the caches are filled and the first pass
// is done.
func (r *Runner) Synced() <-chan struct{} { return r.synced }

// NodeName is the Node the runner registered.
func (r *Runner) NodeName() string { return r.cfg.NodeName }

// Run runs pods until ctx ends, then stops every process it started and every Service
// proxy, and returns. The Node stays registered (and goes NotReady once its Lease runs out),
// as a stopped kubelet's does.
func (r *Runner) Run(ctx context.Context) error {
	watched := []client.Object{
		&corev1.Pod{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Secret{}, &corev1.ConfigMap{},
		&corev1.PersistentVolumeClaim{}, &corev1.PersistentVolume{},
	}
	for _, obj := range watched {
		inf, err := r.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("localkubelet: informer: %w", err)
		}
		poke := func(any) { r.poke() }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, _ any) { r.poke() },
		}); err != nil {
			return fmt.Errorf("localkubelet: event handler: %w", err)
		}
	}
	if err := r.registerNode(ctx); err != nil {
		return fmt.Errorf("localkubelet: %w", err)
	}
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- r.cache.Start(cacheCtx) }()
	if !r.cache.WaitForCacheSync(ctx) {
		return errors.New("localkubelet: caches did not sync")
	}
	go r.heartbeat(ctx)
	r.cfg.Logger.Info("local kubelet started", "node", r.cfg.NodeName, "workDir", r.cfg.WorkDir)

	ticker := time.NewTicker(r.cfg.ResyncPeriod)
	defer ticker.Stop()
	first := true
	for {
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Error("sync failed", "err", err)
		}
		if first {
			close(r.synced)
			first = false
		}
		select {
		case <-ctx.Done():
			r.shutdown()
			return nil
		case err := <-cacheErr:
			r.shutdown()
			return fmt.Errorf("localkubelet: cache stopped: %w", err)
		case <-r.kick:
		case <-ticker.C:
		}
	}
}

// shutdown stops every pod and proxy and waits for the processes to end.
func (r *Runner) shutdown() {
	r.mu.Lock()
	var waits []chan struct{}
	for _, p := range r.pods {
		r.stopPodLocked(p)
		waits = append(waits, p.done)
	}
	var proxies []*servicePortProxy
	for _, ports := range r.proxies {
		for _, px := range ports {
			proxies = append(proxies, px)
		}
	}
	r.proxies = map[string]map[int32]*servicePortProxy{}
	r.mu.Unlock()
	deadline := time.After(r.cfg.MaxGracePeriod + 5*time.Second)
	for _, w := range waits {
		select {
		case <-w:
		case <-deadline:
			r.cfg.Logger.Error("pods did not stop in time")
		}
	}
	for _, px := range proxies {
		px.Close()
	}
	r.cfg.Logger.Info("local kubelet stopped")
}

// statusWrite is a Pod status the runner computed and is about to write.
type statusWrite struct {
	pod *corev1.Pod
}

// sync makes one level-triggered pass: volumes, Service proxies, the node's pods (start,
// stop, volume updates), then the pods' status and the final deletion of stopped ones.
func (r *Runner) sync(ctx context.Context) error {
	var errs []error
	if err := r.syncVolumes(ctx); err != nil {
		errs = append(errs, err)
	}
	var pods corev1.PodList
	var svcs corev1.ServiceList
	if err := r.cache.List(ctx, &pods); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	if err := r.cache.List(ctx, &svcs); err != nil {
		return fmt.Errorf("listing services: %w", err)
	}

	now := time.Now()
	r.mu.Lock()
	closing := r.syncServicesLocked(svcs.Items)
	seen := map[types.UID]bool{}
	var orphans []*corev1.Pod
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Spec.NodeName != r.cfg.NodeName {
			continue
		}
		seen[pod.UID] = true
		lp, ok := r.pods[pod.UID]
		if !ok {
			if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				// Not run by this runner (a pod left by an earlier run): nothing to stop.
				if pod.DeletionTimestamp != nil {
					orphans = append(orphans, pod)
				}
				continue
			}
			ip, err := r.ips.allocate()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			lp = newLocalPod(pod, ip, r.podsDir(), now)
			lp.volumes = planVolumes(pod.Spec.Volumes, lp.dir)
			r.pods[pod.UID] = lp
			r.cfg.Logger.Info("pod admitted", "pod", lp.key(), "ip", ip.String())
		}
		lp.pod = pod.DeepCopy()
		if pod.DeletionTimestamp != nil {
			r.stopPodLocked(lp)
		}
	}
	for uid, lp := range r.pods {
		if !seen[uid] {
			lp.deleted = true
			r.stopPodLocked(lp)
		}
	}
	r.advancePodsLocked(ctx, now)
	var writes []statusWrite
	var finals []*localPod
	for _, lp := range r.pods {
		if lp.phase == podTerminating {
			select {
			case <-lp.done:
				finals = append(finals, lp)
			default:
			}
			continue
		}
		st := podStatus(lp.pod.Status, lp.snapshot())
		if !equality.Semantic.DeepEqual(st, lp.pod.Status) {
			updated := lp.pod.DeepCopy()
			updated.Status = st
			writes = append(writes, statusWrite{pod: updated})
		}
	}
	r.mu.Unlock()

	for _, px := range closing {
		px.Close()
	}
	for _, w := range writes {
		if err := r.client.Status().Update(ctx, w.pod); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("writing status of pod %s/%s: %w", w.pod.Namespace, w.pod.Name, err))
		}
	}
	for _, lp := range finals {
		if !lp.deleted {
			if err := r.deletePod(ctx, lp.pod); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		r.forget(lp)
	}
	for _, pod := range orphans {
		if err := r.deletePod(ctx, pod); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deletePod finishes a pod's graceful deletion once its processes stopped, as the kubelet
// does: a delete with grace period 0, for that pod (UID) only.
func (r *Runner) deletePod(ctx context.Context, pod *corev1.Pod) error {
	err := r.client.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// forget drops a stopped pod: its directory, its address.
func (r *Runner) forget(lp *localPod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pods, lp.uid)
	r.ips.release(lp.ip)
	if err := os.RemoveAll(lp.dir); err != nil {
		r.cfg.Logger.Warn("removing pod directory failed", "pod", lp.key(), "err", err)
	}
	r.cfg.Logger.Info("pod stopped", "pod", lp.key())
}

func (r *Runner) podsDir() string { return filepath.Join(r.cfg.WorkDir, "pods") }

// graceOf is the grace period a stopping pod gets: the deletion's, else the pod's own.
func graceOf(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	default:
		return 30 * time.Second
	}
}

// stopPodLocked begins stopping a pod; its processes get SIGTERM, then SIGKILL after the
// grace period.
func (r *Runner) stopPodLocked(p *localPod) {
	switch p.phase {
	case podPending:
		p.phase = podTerminating
		close(p.done)
	case podRunning:
		p.phase = podTerminating
		p.cancel()
	default:
		return
	}
	r.cfg.Logger.Info("pod stopping", "pod", p.key())
}

// volumeSourcesOf is where a pod's volume content comes from.
func (r *Runner) volumeSourcesOf(p *localPod) volumeSources {
	return volumeSources{reader: r.cache, pod: p.pod, tokens: r.requestToken}
}

// advancePodsLocked starts pending pods whose inputs are there and refreshes the volumes
// of running pods.
func (r *Runner) advancePodsLocked(ctx context.Context, now time.Time) {
	for _, p := range r.pods {
		switch p.phase {
		case podPending:
			if err := r.preparePodLocked(ctx, p, now); err != nil {
				if p.waiting != err.Error() {
					r.cfg.Logger.Info("pod waiting", "pod", p.key(), "reason", err.Error())
				}
				p.waiting = err.Error()
				continue
			}
			p.waiting = ""
			p.phase = podRunning
			p.startedAt = now
			runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			p.cancel = cancel
			go r.runPod(runCtx, p)
			r.cfg.Logger.Info("pod started", "pod", p.key())
		case podRunning:
			for _, v := range p.volumes {
				changed, err := v.materialize(ctx, r.volumeSourcesOf(p), now)
				if err != nil {
					r.cfg.Logger.Warn("volume update failed", "pod", p.key(), "volume", v.name, "err", err)
					continue
				}
				if changed {
					r.cfg.Logger.Info("volume updated", "pod", p.key(), "volume", v.name)
				}
			}
		}
	}
}

// preparePodLocked materialises a pending pod's volumes, picks its ports and builds its
// containers' launches; an error says what the pod waits for.
func (r *Runner) preparePodLocked(ctx context.Context, p *localPod, now time.Time) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("creating pod directory: %w", err)
	}
	for _, v := range p.volumes {
		if _, err := v.materialize(ctx, r.volumeSourcesOf(p), now); err != nil {
			return err
		}
	}
	if err := p.allocatePorts(r.portForLocked); err != nil {
		return err
	}
	serviceEnv := r.serviceEnvLocked(p.pod)
	build := func(c corev1.Container, ports map[int32]int) (*containerRun, error) {
		mounts, err := p.mountsOf(c)
		if err != nil {
			return nil, err
		}
		kubeconfig, err := r.inClusterKubeconfig(p, c, mounts)
		if err != nil {
			return nil, err
		}
		l, err := buildLaunch(ctx, launchInputs{
			Pod: identityOf(p.pod), Container: c, Mounts: mounts, Ports: ports,
			Images: r.cfg.Images, Services: r.resolveServiceLocked, Reader: r.cache,
			ServiceEnv: serviceEnv, Kubeconfig: kubeconfig,
		})
		if err != nil {
			return nil, err
		}
		workDir := p.dir
		if c.WorkingDir != "" {
			workDir = RemapPaths(c.WorkingDir, mounts)
		}
		return &containerRun{
			name: c.Name, spec: c, launch: l, ports: ports, mounts: mounts, workDir: workDir,
			logPath: filepath.Join(p.dir, c.Name+".log"),
		}, nil
	}
	var inits, mains []*containerRun
	for _, c := range p.pod.Spec.InitContainers {
		cr, err := build(c, nil)
		if err != nil {
			return err
		}
		inits = append(inits, cr)
	}
	for _, c := range p.pod.Spec.Containers {
		cr, err := build(c, p.ports[c.Name])
		if err != nil {
			return err
		}
		mains = append(mains, cr)
	}
	p.initContainers, p.containers = inits, mains
	return nil
}

// serviceEnvLocked is the environment the kubelet gives every container before its own:
// KUBERNETES_SERVICE_HOST and _PORT (the API server, on loopback here) and, unless the pod
// turns Service links off, the same variables for each Service of its namespace (their
// local proxies here).
func (r *Runner) serviceEnvLocked(pod *corev1.Pod) []EnvVar {
	host, port := r.apiServer.Hostname(), r.apiServer.Port()
	env := []EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: host},
		{Name: "KUBERNETES_SERVICE_PORT", Value: port},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: port},
		{Name: "KUBERNETES_PORT", Value: "tcp://" + net.JoinHostPort(host, port)},
	}
	if pod.Spec.EnableServiceLinks != nil && !*pod.Spec.EnableServiceLinks {
		return env
	}
	var keys []string
	for key := range r.proxies {
		if strings.HasPrefix(key, pod.Namespace+"/") {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		svc := r.services[key]
		if svc == nil || len(svc.Spec.Ports) == 0 {
			continue
		}
		prefix := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
		for i, sp := range svc.Spec.Ports {
			px, ok := r.proxies[key][sp.Port]
			if !ok {
				continue
			}
			_, local, _ := net.SplitHostPort(px.Addr())
			if i == 0 {
				env = append(env, EnvVar{Name: prefix + "_SERVICE_HOST", Value: "127.0.0.1"}, EnvVar{Name: prefix + "_SERVICE_PORT", Value: local})
			}
			if sp.Name != "" {
				env = append(env, EnvVar{Name: prefix + "_SERVICE_PORT_" + strings.ToUpper(strings.ReplaceAll(sp.Name, "-", "_")), Value: local})
			}
		}
	}
	return env
}

// inClusterKubeconfig writes, for a container that mounts the service-account token
// volume, a kubeconfig with what rest.InClusterConfig would use (the API server, the
// token file, the CA of kube-root-ca.crt), at their local paths; "" for other containers.
func (r *Runner) inClusterKubeconfig(p *localPod, c corev1.Container, mounts []PathMapping) (string, error) {
	dir := ""
	for _, m := range mounts {
		if strings.TrimSuffix(m.ContainerPath, "/") == serviceAccountMountPath {
			dir = m.LocalPath
		}
	}
	if dir == "" {
		return "", nil
	}
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
		"clusters": []any{map[string]any{"name": "in-cluster", "cluster": map[string]any{
			"server": "https://" + r.apiServer.Host, "certificate-authority": filepath.Join(dir, "ca.crt"),
		}}},
		"users": []any{map[string]any{"name": "service-account", "user": map[string]any{"tokenFile": filepath.Join(dir, "token")}}},
		"contexts": []any{map[string]any{"name": "in-cluster", "context": map[string]any{
			"cluster": "in-cluster", "user": "service-account", "namespace": p.pod.Namespace,
		}}},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("rendering the in-cluster kubeconfig: %w", err)
	}
	path := filepath.Join(p.dir, c.Name+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the in-cluster kubeconfig: %w", err)
	}
	return path, nil
}

// requestToken asks the TokenRequest API for a token of the pod's ServiceAccount bound to
// the pod, as the kubelet does for a serviceAccountToken projection.
func (r *Runner) requestToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, time.Time, error) {
	name := cmpOr(pod.Spec.ServiceAccountName, "default")
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &expirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if audience != "" {
		tr.Spec.Audiences = []string{audience}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pod.Namespace}}
	if err := r.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", time.Time{}, fmt.Errorf("token for serviceaccount %s/%s: %w", pod.Namespace, name, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// runPod runs a pod's init containers in order, then its containers, until ctx ends.
func (r *Runner) runPod(ctx context.Context, p *localPod) {
	defer func() {
		close(p.done)
		r.poke()
	}()
	grace := func() time.Duration {
		r.mu.Lock()
		defer r.mu.Unlock()
		return graceOf(p.pod)
	}
	for _, c := range p.initContainers {
		if err := r.sup.runToCompletion(ctx, p.pod.Name, grace, c); err != nil {
			return
		}
	}
	close(p.initDone)
	r.poke()
	var wg sync.WaitGroup
	for _, c := range p.containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sup.supervise(ctx, p.pod.Name, grace, c)
		}()
	}
	wg.Wait()
}

// snapshot is the pod's state for its status.
func (p *localPod) snapshot() podSnapshot {
	s := podSnapshot{
		ip: p.ip.String(), hostIP: "127.0.0.1", createdAt: p.createdAt,
		prepared: p.phase == podRunning, waiting: p.waiting, initialized: p.phase == podRunning && p.initialized(),
	}
	snap := func(spec []corev1.Container, runs []*containerRun) []containerSnapshot {
		out := make([]containerSnapshot, len(spec))
		for i, c := range spec {
			out[i] = containerSnapshot{name: c.Name, image: c.Image}
			if i < len(runs) {
				out[i] = runs[i].snapshot()
			}
		}
		return out
	}
	s.initContainers = snap(p.pod.Spec.InitContainers, p.initContainers)
	s.containers = snap(p.pod.Spec.Containers, p.containers)
	return s
}

// syncServicesLocked keeps one proxy per Service port and returns the proxies to close.
func (r *Runner) syncServicesLocked(svcs []corev1.Service) []*servicePortProxy {
	var closing []*servicePortProxy
	seen := map[string]bool{}
	for i := range svcs {
		svc := svcs[i].DeepCopy()
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		seen[key] = true
		r.services[key] = svc
		ports := r.proxies[key]
		if ports == nil {
			ports = map[int32]*servicePortProxy{}
			r.proxies[key] = ports
		}
		want := map[int32]bool{}
		for _, sp := range svc.Spec.Ports {
			want[sp.Port] = true
			if px, ok := ports[sp.Port]; ok {
				px.port = sp
				continue
			}
			px, err := newServicePortProxy(key, sp, r.endpointsFunc(key, sp.Port), r.cfg.Logger)
			if err != nil {
				r.cfg.Logger.Error("service proxy failed", "service", key, "err", err)
				continue
			}
			ports[sp.Port] = px
			r.cfg.Logger.Info("service proxy listening", "service", key, "port", sp.Port, "addr", px.Addr())
		}
		for port, px := range ports {
			if !want[port] {
				closing = append(closing, px)
				delete(ports, port)
			}
		}
	}
	for key, ports := range r.proxies {
		if seen[key] {
			continue
		}
		for _, px := range ports {
			closing = append(closing, px)
		}
		delete(r.proxies, key)
		delete(r.services, key)
	}
	return closing
}

// endpointsFunc returns the function a proxy calls, per connection, for the local
// addresses of a Service port's backends: the ready endpoints of the Service's
// EndpointSlices (written by kube-controller-manager), each reached at the loopback port
// that stands for the endpoint's port on that pod. A pod this node is stopping is left
// out at once, before its endpoint turns not-ready in the slice.
func (r *Runner) endpointsFunc(key string, port int32) func() []string {
	return func() []string {
		r.mu.Lock()
		svc, ok := r.services[key]
		r.mu.Unlock()
		if !ok {
			return nil
		}
		var sp *corev1.ServicePort
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Port == port {
				sp = &svc.Spec.Ports[i]
			}
		}
		if sp == nil {
			return nil
		}
		var slices discoveryv1.EndpointSliceList
		if err := r.cache.List(context.Background(), &slices, client.InNamespace(svc.Namespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
			return nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		byIP := map[string]*localPod{}
		for _, p := range r.pods {
			if p.phase == podRunning {
				byIP[p.ip.String()] = p
			}
		}
		var out []string
		for _, slice := range slices.Items {
			target, ok := slicePort(slice.Ports, sp.Name)
			if !ok {
				continue
			}
			for _, ep := range slice.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, addr := range ep.Addresses {
					p, ok := byIP[addr]
					if !ok {
						continue
					}
					if local, ok := p.localPortOf(target); ok {
						out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
					}
				}
			}
		}
		sort.Strings(out)
		return out
	}
}

// slicePort finds the port number of an EndpointSlice for the Service port of that name.
func slicePort(ports []discoveryv1.EndpointPort, name string) (int32, bool) {
	for _, p := range ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		if pname == name && p.Port != nil && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
			return *p.Port, true
		}
	}
	return 0, false
}

// resolveServiceLocked is the ServiceResolver of launches: a Service port's proxy address,
// or for a pod's DNS name under a headless Service the loopback port the pods of that name
// get (portForLocked). Between a pod and its replacement the name resolves to the port the
// replacement gets: a cluster's resolver is asked again until the record is back, while a
// launch is rewritten once. A name no pod has had yet is left as it is, and fails to
// resolve, as a pod's name does in a cluster before the pod has an address.
func (r *Runner) resolveServiceLocked(ref ServiceRef) (string, bool) {
	if ref.Pod != "" {
		local, ok := r.namedPorts[namedPortKey(podDNSName(ref.Pod, ref.Name, ref.Namespace), ref.Port)]
		if !ok {
			return "", false
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(local)), true
	}
	px, ok := r.proxies[ref.Namespace+"/"+ref.Name][ref.Port]
	if !ok {
		return "", false
	}
	return px.Addr(), true
}

// portForLocked picks the loopback port of a declared port of a pod: a free one, and for a
// pod with a DNS name the one an earlier pod of that name had, while it is free.
func (r *Runner) portForLocked(pod *corev1.Pod, containerPort int32) (int, error) {
	name := dnsNameOf(pod)
	if name == "" {
		return freeLoopbackPort()
	}
	key := namedPortKey(name, containerPort)
	if port, ok := r.namedPorts[key]; ok && loopbackPortFree(port) {
		return port, nil
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return 0, err
	}
	r.namedPorts[key] = port
	return port, nil
}

// namedPortKey keys namedPorts: a pod's DNS name and a declared port.
func namedPortKey(dnsName string, containerPort int32) string {
	return dnsName + ":" + strconv.Itoa(int(containerPort))
}

// Pods describes the runner's pods, sorted by namespace and name.
func (r *Runner) Pods() []PodInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PodInfo, 0, len(r.pods))
	for _, p := range r.pods {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ServiceAddr returns the local "127.0.0.1:port" address that stands for a Service port.
func (r *Runner) ServiceAddr(namespace, name string, port int32) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolveServiceLocked(ServiceRef{Namespace: namespace, Name: name, Port: port})
}
