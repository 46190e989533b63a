package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/test/cluster"
)

// Options configure a Stack.
type Options struct {
	// RepoRoot is the auth-operator checkout: its sources, CRDs and RBAC.
	RepoRoot string
	// ControlPlaneDir holds the cluster's binaries (cluster.Options.ControlPlaneDir).
	ControlPlaneDir string
	// WorkDir receives the kubeconfig, the logs and the node's state.
	WorkDir string
	// BuildImages builds the OCI image archives to import (BuildOperatorImage,
	// BuildRedisImage, a release's image). It runs while the cluster starts, and its images are
	// imported once the node runs.
	BuildImages func(ctx context.Context) ([]string, error)
	// RunOperator runs the operator as a local process against the cluster (the fast edit
	// loop of `make dev`), with the CRDs and the issuer's ClusterRole installed first. When
	// false the caller installs the operator, as a user does (the e2e).
	RunOperator bool
	// MinKeyPublishTime is the process operator's --min-key-publish-time; zero keeps its
	// default.
	MinKeyPublishTime time.Duration
	// Progress receives one line per step; nil discards them.
	Progress func(format string, args ...any)
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// Stack is the project on a running local cluster.
type Stack struct {
	*cluster.Cluster
	// ManagerLog is the log of the operator process, when RunOperator.
	ManagerLog string

	opts        Options
	manager     *exec.Cmd
	managerDone chan error
}

// Start starts the cluster while it builds the images, imports them, and, with RunOperator,
// installs the CRDs and runs the operator. The program must call cluster.RunHolderIfAsked first.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	// s, not the named result, which a failing return sets to nil before the deferred Stop.
	s := &Stack{opts: opts}
	type buildResult struct {
		archives []string
		err      error
	}
	built := make(chan buildResult, 1)
	buildCtx, cancelBuild := context.WithCancel(ctx)
	defer cancelBuild()
	go func() {
		var r buildResult
		if opts.BuildImages != nil {
			r.archives, r.err = opts.BuildImages(buildCtx)
		}
		built <- r
	}()
	c, err := cluster.Start(ctx, cluster.Options{
		RepoRoot: opts.RepoRoot, ControlPlaneDir: opts.ControlPlaneDir, WorkDir: opts.WorkDir, Progress: opts.Progress,
	})
	if err != nil {
		cancelBuild()
		<-built
		return nil, err
	}
	s.Cluster = c
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	images := <-built
	if images.err != nil {
		return nil, images.err
	}
	opts.progress("importing the images")
	if err := c.ImportImages(ctx, images.archives...); err != nil {
		return nil, err
	}
	if !opts.RunOperator {
		return s, nil
	}
	opts.progress("installing the CRDs and the issuer's ClusterRole")
	if _, err := s.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(opts.RepoRoot, "config", "crd", "bases")); err != nil {
		return nil, err
	}
	// The operator's cache asks for AuthServices at once, and an apply returns before the API
	// server serves a new CRD: the operator would exit on "no matches for kind AuthService".
	if _, err := s.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "-f", filepath.Join(opts.RepoRoot, "config", "crd", "bases")); err != nil {
		return nil, err
	}
	if err := s.installIssuerClusterRole(ctx); err != nil {
		return nil, err
	}
	opts.progress("starting the operator (%s %s)", s.managerPath(), strings.Join(s.operatorSettings(), " "))
	if err := s.startManager(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Kubectl runs the cluster's kubectl as the administrator and returns its output.
func (s *Stack) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.ControlPlaneDir, "kubectl"), append([]string{"--kubeconfig", s.KubeconfigPath}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Client returns a client of the cluster that knows the AuthService API.
func (s *Stack) Client() (client.Client, error) {
	scheme := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(s.Config, client.Options{Scheme: scheme})
}

// installIssuerClusterRole creates the ClusterRole the operator binds to every issuer (create
// TokenReviews), from config/rbac as an install ships it, for the operator process, which
// runs without the install's manifests. The operator binds authv1alpha1.IssuerClusterRoleName.
func (s *Stack) installIssuerClusterRole(ctx context.Context) error {
	path := filepath.Join(s.opts.RepoRoot, "config", "rbac", "issuer_role.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the issuer's ClusterRole: %w", err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	role.Name = authv1alpha1.IssuerClusterRoleName
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRole %s: %w", role.Name, err)
	}
	return nil
}

// RestrictedNamespace creates the namespace ns (or labels it) to enforce the restricted Pod
// Security Standard, as a platform team's namespaces do.
func (s *Stack) RestrictedNamespace(ctx context.Context, ns string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if err := c.Get(ctx, types.NamespacedName{Name: ns}, obj); apierrors.IsNotFound(err) {
		obj.Labels = RestrictedLabels
		return c.Create(ctx, obj)
	} else if err != nil {
		return err
	}
	patch := client.MergeFrom(obj.DeepCopy())
	if obj.Labels == nil {
		obj.Labels = map[string]string{}
	}
	for k, v := range RestrictedLabels {
		obj.Labels[k] = v
	}
	return c.Patch(ctx, obj, patch)
}

// RestrictedLabels make a namespace enforce (and warn and audit) the restricted Pod
// Security Standard.
var RestrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
	"pod-security.kubernetes.io/audit":   "restricted",
}

// managerPath is the manager binary of the image BuildOperatorImage built into WorkDir/images.
func (s *Stack) managerPath() string {
	return filepath.Join(s.opts.WorkDir, "images", "bin", "linux-"+runtime.GOARCH, "manager")
}

// operatorSettings are the operator process's flags that the options set.
func (s *Stack) operatorSettings() []string {
	args := []string{"--authserver-image=" + OperatorImage}
	if s.opts.MinKeyPublishTime != 0 {
		args = append(args, "--min-key-publish-time="+s.opts.MinKeyPublishTime.String())
	}
	return args
}

// startManager runs the operator binary of the image against the cluster and waits until
// its readiness probe answers.
func (s *Stack) startManager(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	probeAddr := ln.Addr().String()
	ln.Close()
	s.ManagerLog = filepath.Join(s.LogsDir(), "manager.log")
	logFile, err := os.Create(s.ManagerLog)
	if err != nil {
		return fmt.Errorf("creating the operator log: %w", err)
	}
	args := append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=" + probeAddr}, s.operatorSettings()...)
	cmd := exec.Command(s.managerPath(), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.KubeconfigPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting the operator: %w", err)
	}
	s.manager = cmd
	s.managerDone = make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		s.managerDone <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.managerDone:
			s.managerDone <- err
			return fmt.Errorf("the operator exited at start (%w): see %s", err, s.ManagerLog)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := hc.Get("http://" + probeAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator did not become ready within 60s: see %s", s.ManagerLog)
		}
	}
}

// ManagerRunning reports whether the operator process runs (false without RunOperator).
func (s *Stack) ManagerRunning() bool {
	if s.managerDone == nil {
		return false
	}
	select {
	case err := <-s.managerDone:
		s.managerDone <- err
		return false
	default:
		return true
	}
}

// Stop stops the operator process and the cluster.
func (s *Stack) Stop() error {
	var errs []error
	if s.manager != nil {
		s.opts.progress("stopping the operator")
		_ = syscall.Kill(-s.manager.Process.Pid, syscall.SIGTERM)
		select {
		case err := <-s.managerDone:
			s.managerDone <- err
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-s.manager.Process.Pid, syscall.SIGKILL)
			s.managerDone <- <-s.managerDone
			errs = append(errs, errors.New("the operator did not stop within 15s and was killed"))
		}
		s.manager = nil
	}
	if s.Cluster != nil {
		if err := s.Cluster.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServiceURL maps an in-cluster Service URL (http[s]://NAME.NS.svc[.cluster.local][:PORT][/path],
// as the operator writes to the status) to one the host reaches: the Service's ClusterIP,
// which the node routes, with the same port and path.
func (s *Stack) ServiceURL(ctx context.Context, inCluster string) (string, error) {
	u, err := url.Parse(inCluster)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", inCluster, err)
	}
	host := strings.TrimSuffix(strings.TrimSuffix(u.Hostname(), "."+cluster.ClusterDomain), ".svc")
	name, ns, ok := strings.Cut(host, ".")
	if !ok || strings.Contains(ns, ".") {
		return "", fmt.Errorf("%q is not a URL of a Service (NAME.NAMESPACE.svc)", inCluster)
	}
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		return "", fmt.Errorf("the Service of %s: %w", inCluster, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("the Service %s/%s has no ClusterIP", ns, name)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	u.Host = net.JoinHostPort(svc.Spec.ClusterIP, port)
	return strings.TrimSuffix(u.String(), "/"), nil
}

// ReadyReport is a short account of why an AuthService is or is not Ready.
func ReadyReport(as *authv1alpha1.AuthService) (bool, string) {
	for _, c := range as.Status.Conditions {
		if c.Type != authv1alpha1.ReadyCondition {
			continue
		}
		if c.ObservedGeneration != as.Generation {
			return false, fmt.Sprintf("Ready is for generation %d, the object is at %d", c.ObservedGeneration, as.Generation)
		}
		return c.Status == metav1.ConditionTrue, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	}
	return false, "no Ready condition yet"
}

// WaitReady waits until the AuthService is Ready, reporting each new reason it gives.
func (s *Stack) WaitReady(ctx context.Context, key types.NamespacedName, timeout time.Duration, report func(string)) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		var as authv1alpha1.AuthService
		msg := ""
		if err := c.Get(ctx, key, &as); err != nil {
			msg = err.Error()
		} else {
			var ready bool
			if ready, msg = ReadyReport(&as); ready {
				return nil
			}
		}
		if msg != last && report != nil {
			report(msg)
		}
		last = msg
		if s.opts.RunOperator && !s.ManagerRunning() {
			return fmt.Errorf("the operator exited: see %s", s.ManagerLog)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("AuthService %s not Ready within %s: %s", key, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
