package localkubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagedByLabel and ManagedByValue select the workloads the runner runs by default.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "auth-operator"
)

// Config configures a Runner.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// WorkDir holds the pods' directories ("pods/") and the persistent volume claims'
	// directories ("claims/"), which outlive the pods.
	WorkDir string
	// Images maps a container image to a local program.
	Images ImageResolver
	// Namespace limits the runner to one namespace; empty means every namespace.
	Namespace string
	// Selector picks the Deployments, StatefulSets and Services to run; the default is
	// app.kubernetes.io/managed-by=auth-operator.
	Selector labels.Selector
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
	// MaxGracePeriod caps a pod's terminationGracePeriodSeconds; default 10s.
	MaxGracePeriod time.Duration
	// ResyncPeriod is how often the runner re-checks everything without an event; default 1s.
	ResyncPeriod time.Duration
}

// Runner plays the kubelet's (and the workload controllers') part for labelled
// Deployments and StatefulSets: it runs their pods as local processes.
type Runner struct {
	cfg    Config
	cache  cache.Cache
	client client.Client
	sup    *processSupervisor
	kick   chan struct{}
	synced chan struct{}

	mu       sync.Mutex
	pods     map[string]*localPod
	services map[string]*corev1.Service
	proxies  map[string]map[int32]*servicePortProxy
}

// New checks cfg and builds a Runner; Run starts it.
func New(cfg Config) (*Runner, error) {
	if cfg.RESTConfig == nil || cfg.WorkDir == "" || cfg.Images == nil {
		return nil, errors.New("localkubelet: RESTConfig, WorkDir and Images are required")
	}
	if cfg.Selector == nil {
		cfg.Selector = labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedByValue})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.RestartBackoff = cmpOr(cfg.RestartBackoff, time.Second)
	cfg.MaxRestartBackoff = cmpOr(cfg.MaxRestartBackoff, 30*time.Second)
	cfg.MaxGracePeriod = cmpOr(cfg.MaxGracePeriod, 10*time.Second)
	cfg.ResyncPeriod = cmpOr(cfg.ResyncPeriod, time.Second)
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("localkubelet: work directory: %w", err)
	}
	cfg.WorkDir = abs

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("localkubelet: scheme: %w", err)
	}
	opts := cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:  {Label: cfg.Selector},
			&appsv1.StatefulSet{}: {Label: cfg.Selector},
			&corev1.Service{}:     {Label: cfg.Selector},
		},
	}
	if cfg.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{cfg.Namespace: {}}
	}
	c, err := cache.New(cfg.RESTConfig, opts)
	if err != nil {
		return nil, fmt.Errorf("localkubelet: cache: %w", err)
	}
	cl, err := client.New(cfg.RESTConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("localkubelet: client: %w", err)
	}
	r := &Runner{
		cfg: cfg, cache: c, client: cl,
		kick:     make(chan struct{}, 1),
		synced:   make(chan struct{}),
		pods:     map[string]*localPod{},
		services: map[string]*corev1.Service{},
		proxies:  map[string]map[int32]*servicePortProxy{},
	}
	r.sup = &processSupervisor{
		log: cfg.Logger, output: cfg.ProcessOutput, outputMu: &sync.Mutex{},
		initialBackoff: cfg.RestartBackoff, maxBackoff: cfg.MaxRestartBackoff,
		maxGrace: cfg.MaxGracePeriod, changed: r.poke,
	}
	return r, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// poke asks the sync loop for a pass soon.
func (r *Runner) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Synced is closed once the runner's caches are filled and its first pass is done.
func (r *Runner) Synced() <-chan struct{} { return r.synced }

// Run runs pods until ctx ends, then stops every process it started and every Service
// proxy, and returns.
func (r *Runner) Run(ctx context.Context) error {
	for _, obj := range []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &corev1.Service{}, &corev1.Secret{}, &corev1.ConfigMap{}} {
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
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- r.cache.Start(cacheCtx) }()
	if !r.cache.WaitForCacheSync(ctx) {
		return errors.New("localkubelet: caches did not sync")
	}
	r.cfg.Logger.Info("local kubelet started", "workDir", r.cfg.WorkDir)

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

// workloadStatus is a status the runner computed and is about to write.
type workloadStatus struct {
	obj  client.Object
	orig client.Object
}

// sync makes one level-triggered pass: Service proxies, pods of every workload, volume
// updates, then the workloads' status.
func (r *Runner) sync(ctx context.Context) error {
	var deps appsv1.DeploymentList
	var sets appsv1.StatefulSetList
	var svcs corev1.ServiceList
	inNS := client.InNamespace(r.cfg.Namespace)
	if err := r.cache.List(ctx, &deps, inNS); err != nil {
		return fmt.Errorf("listing deployments: %w", err)
	}
	if err := r.cache.List(ctx, &sets, inNS); err != nil {
		return fmt.Errorf("listing statefulsets: %w", err)
	}
	if err := r.cache.List(ctx, &svcs, inNS); err != nil {
		return fmt.Errorf("listing services: %w", err)
	}

	r.mu.Lock()
	closing := r.syncServicesLocked(svcs.Items)
	now := time.Now()
	owners := map[string]bool{}
	var writes []workloadStatus
	for i := range deps.Items {
		d := &deps.Items[i]
		owners["Deployment/"+d.Namespace+"/"+d.Name] = true
		if st := r.syncDeploymentLocked(d, now); st != nil {
			writes = append(writes, *st)
		}
	}
	for i := range sets.Items {
		s := &sets.Items[i]
		owners["StatefulSet/"+s.Namespace+"/"+s.Name] = true
		if st := r.syncStatefulSetLocked(s, now); st != nil {
			writes = append(writes, *st)
		}
	}
	for _, p := range r.pods {
		if !owners[p.ownerKind+"/"+p.namespace+"/"+p.ownerName] {
			r.stopPodLocked(p)
		}
	}
	r.advancePodsLocked(ctx, now)
	r.mu.Unlock()

	for _, px := range closing {
		px.Close()
	}
	var errs []error
	for _, w := range writes {
		if err := r.client.Status().Patch(ctx, w.obj, client.MergeFrom(w.orig)); err != nil {
			errs = append(errs, fmt.Errorf("writing status of %s/%s: %w", w.obj.GetNamespace(), w.obj.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) podsOfLocked(kind, namespace, name string) []*localPod {
	var out []*localPod
	for _, p := range r.pods {
		if p.ownerKind == kind && p.namespace == namespace && p.ownerName == name {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func summaries(pods []*localPod, now time.Time, minReady time.Duration) []podSummary {
	out := make([]podSummary, len(pods))
	for i, p := range pods {
		out[i] = p.summary(now, minReady)
	}
	return out
}

func (r *Runner) syncDeploymentLocked(d *appsv1.Deployment, now time.Time) *workloadStatus {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	hash := templateHash(d.Spec.Template)
	minReady := time.Duration(d.Spec.MinReadySeconds) * time.Second
	pods := r.podsOfLocked("Deployment", d.Namespace, d.Name)
	plan := planDeployment(replicas, d.Spec.Strategy, hash, summaries(pods, now, minReady))
	for range plan.Create {
		name := d.Name + "-" + hash + "-" + utilrand.String(5)
		p := newLocalPod(d.Namespace, name, "Deployment", d.Name, -1, hash, d.Spec.Template, r.podsDir())
		p.volumes = planVolumes(d.Spec.Template.Spec.Volumes, p.dir, r.claimsDir(d.Namespace))
		r.pods[p.key()] = p
		r.cfg.Logger.Info("pod created", "pod", p.key())
	}
	r.stopNamedLocked(d.Namespace, plan.Delete)

	pods = r.podsOfLocked("Deployment", d.Namespace, d.Name)
	st := deploymentStatus(d, hash, summaries(pods, now, minReady), metav1.NewTime(now))
	if equality.Semantic.DeepEqual(st, d.Status) {
		return nil
	}
	orig := d.DeepCopy()
	d.Status = st
	return &workloadStatus{obj: d, orig: orig}
}

func (r *Runner) syncStatefulSetLocked(s *appsv1.StatefulSet, now time.Time) *workloadStatus {
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	hash := templateHash(s.Spec.Template)
	minReady := time.Duration(s.Spec.MinReadySeconds) * time.Second
	pods := r.podsOfLocked("StatefulSet", s.Namespace, s.Name)
	parallel := s.Spec.PodManagementPolicy == appsv1.ParallelPodManagement
	rolling := s.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType
	plan := planStatefulSet(replicas, parallel, rolling, hash, summaries(pods, now, minReady))
	for _, ord := range plan.CreateOrdinals {
		name := s.Name + "-" + strconv.Itoa(ord)
		p := newLocalPod(s.Namespace, name, "StatefulSet", s.Name, ord, hash, s.Spec.Template, r.podsDir())
		volumes := append([]corev1.Volume(nil), s.Spec.Template.Spec.Volumes...)
		for _, vct := range s.Spec.VolumeClaimTemplates {
			volumes = append(volumes, corev1.Volume{Name: vct.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vct.Name + "-" + name},
			}})
		}
		p.volumes = planVolumes(volumes, p.dir, r.claimsDir(s.Namespace))
		r.pods[p.key()] = p
		r.cfg.Logger.Info("pod created", "pod", p.key())
	}
	r.stopNamedLocked(s.Namespace, plan.Delete)

	pods = r.podsOfLocked("StatefulSet", s.Namespace, s.Name)
	st := statefulSetStatus(s, hash, summaries(pods, now, minReady))
	if equality.Semantic.DeepEqual(st, s.Status) {
		return nil
	}
	orig := s.DeepCopy()
	s.Status = st
	return &workloadStatus{obj: s, orig: orig}
}

func (r *Runner) podsDir() string { return filepath.Join(r.cfg.WorkDir, "pods") }

func (r *Runner) claimsDir(namespace string) string {
	return filepath.Join(r.cfg.WorkDir, "claims", namespace)
}

func (r *Runner) stopNamedLocked(namespace string, names []string) {
	for _, n := range names {
		if p, ok := r.pods[namespace+"/"+n]; ok {
			r.stopPodLocked(p)
		}
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

// advancePodsLocked starts pending pods whose inputs are there, refreshes the projected
// volumes of running pods and forgets pods that have stopped.
func (r *Runner) advancePodsLocked(ctx context.Context, now time.Time) {
	for key, p := range r.pods {
		switch p.phase {
		case podPending:
			if err := r.preparePodLocked(ctx, p, now); err != nil {
				if p.waiting != err.Error() {
					r.cfg.Logger.Info("pod waiting", "pod", key, "reason", err.Error())
				}
				p.waiting = err.Error()
				continue
			}
			p.waiting = ""
			p.phase = podRunning
			runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			p.cancel = cancel
			go r.runPod(runCtx, p)
			r.cfg.Logger.Info("pod started", "pod", key)
		case podRunning:
			if p.ready() {
				if p.readySince.IsZero() {
					p.readySince = now
				}
			} else {
				p.readySince = time.Time{}
			}
			for _, v := range p.volumes {
				changed, err := v.materialize(ctx, r.cache, p.namespace, now)
				if err != nil {
					r.cfg.Logger.Warn("volume update failed", "pod", key, "volume", v.name, "err", err)
					continue
				}
				if changed {
					r.cfg.Logger.Info("volume updated", "pod", key, "volume", v.name)
				}
			}
		case podTerminating:
			select {
			case <-p.done:
				delete(r.pods, key)
				if err := os.RemoveAll(p.dir); err != nil {
					r.cfg.Logger.Warn("removing pod directory failed", "pod", key, "err", err)
				}
				r.cfg.Logger.Info("pod stopped", "pod", key)
			default:
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
		if _, err := v.materialize(ctx, r.cache, p.namespace, now); err != nil {
			return err
		}
	}
	if err := p.allocatePorts(); err != nil {
		return err
	}
	id := podIdentity{
		Namespace: p.namespace, Name: p.name, UID: p.uid,
		Labels: p.template.Labels, Annotations: p.template.Annotations,
		ServiceAccountName: p.template.Spec.ServiceAccountName,
	}
	build := func(c corev1.Container, ports map[int32]int) (*containerRun, error) {
		mounts, err := p.mountsOf(c)
		if err != nil {
			return nil, err
		}
		l, err := buildLaunch(ctx, launchInputs{
			Pod: id, Container: c, Mounts: mounts, Ports: ports,
			Images: r.cfg.Images, Services: r.resolveServiceLocked, Reader: r.cache,
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
	for _, c := range p.template.Spec.InitContainers {
		cr, err := build(c, nil)
		if err != nil {
			return err
		}
		inits = append(inits, cr)
	}
	for _, c := range p.template.Spec.Containers {
		cr, err := build(c, p.ports[c.Name])
		if err != nil {
			return err
		}
		mains = append(mains, cr)
	}
	p.initContainers, p.containers = inits, mains
	return nil
}

// runPod runs a pod's init containers in order, then its containers, until ctx ends.
func (r *Runner) runPod(ctx context.Context, p *localPod) {
	defer func() {
		close(p.done)
		r.poke()
	}()
	grace := 30 * time.Second
	if g := p.template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	for _, c := range p.initContainers {
		if err := r.sup.runToCompletion(ctx, p.name, grace, c); err != nil {
			return
		}
	}
	close(p.initDone)
	var wg sync.WaitGroup
	for _, c := range p.containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sup.supervise(ctx, p.name, grace, c)
		}()
	}
	wg.Wait()
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
// addresses of the ready pods behind a Service port.
func (r *Runner) endpointsFunc(key string, port int32) func() []string {
	return func() []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		svc, ok := r.services[key]
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
		selector := labels.SelectorFromSet(svc.Spec.Selector)
		var out []string
		for _, p := range r.pods {
			if p.namespace != svc.Namespace || !p.ready() || !selector.Matches(labels.Set(p.template.Labels)) {
				continue
			}
			if addr, ok := targetAddr(p, *sp); ok {
				out = append(out, addr)
			}
		}
		sort.Strings(out)
		return out
	}
}

// targetAddr finds the local address of a Service port's target port on a pod.
func targetAddr(p *localPod, sp corev1.ServicePort) (string, bool) {
	for _, c := range p.template.Spec.Containers {
		for _, cp := range c.Ports {
			match := false
			switch {
			case sp.TargetPort.StrVal != "":
				match = cp.Name == sp.TargetPort.StrVal
			case sp.TargetPort.IntVal != 0:
				match = cp.ContainerPort == sp.TargetPort.IntVal
			default:
				match = cp.ContainerPort == sp.Port
			}
			if match {
				return "127.0.0.1:" + strconv.Itoa(p.ports[c.Name][cp.ContainerPort]), true
			}
		}
	}
	return "", false
}

// resolveServiceLocked is the ServiceResolver of launches: a Service port's proxy address.
func (r *Runner) resolveServiceLocked(ref ServiceRef) (string, bool) {
	px, ok := r.proxies[ref.Namespace+"/"+ref.Name][ref.Port]
	if !ok {
		return "", false
	}
	return px.Addr(), true
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
