package controllers

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// The suite starts one kube-apiserver and etcd (envtest) for every test of the package.
// Each test works in its own namespace; a test that needs the controller running starts a
// manager whose cache covers that namespace only, authenticated as a user that holds
// exactly the ClusterRole generated from the RBAC markers.
var (
	testEnv   *envtest.Environment
	adminCfg  *rest.Config
	k8sClient client.Client
	// operatorCfg authenticates as the operator's user, bound to config/rbac/role.yaml only.
	operatorCfg *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

// runSuite runs the tests; the control plane starts with the first test that asks for it
// (requireEnv), so a pure test never waits for one.
//
// The tests are in two tiers: the ones that need the control plane (or another process)
// skip under -short (requireEnv), so `go test -short` (make test-unit) runs the pure tier
// alone and plain `go test` runs both.
func runSuite(m *testing.M) int {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(zapLevel())))
	// The API server and etcd run in their own process groups: stop them on every way out,
	// an interrupt included, so no test run leaves them behind on a shared machine.
	defer stopEnv()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		stopEnv()
		os.Exit(130)
	}()
	return m.Run()
}

var (
	envOnce sync.Once
	envErr  error
)

// requireEnv starts the control plane on first use and skips the test in -short mode.
// Every test that talks to the API server comes through it (newNamespace calls it).
func requireEnv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs envtest (a kube-apiserver and etcd); -short runs the pure tests only")
	}
	envOnce.Do(func() { envErr = startEnv() })
	if envErr != nil {
		t.Fatal(envErr)
	}
}

func startEnv() error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "bin")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	// Room for the Services of the load run (two per AuthService); the default /24 holds 254.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	envMu.Lock()
	testEnv = env
	envMu.Unlock()
	var err error
	if adminCfg, err = env.Start(); err != nil {
		return fmt.Errorf("starting envtest with binaries from %s (run `make controlplane`): %w", assets, err)
	}
	if k8sClient, err = client.New(adminCfg, client.Options{Scheme: testScheme}); err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	if operatorCfg, err = operatorUser(); err != nil {
		return fmt.Errorf("creating the operator's user: %w", err)
	}
	if err := installIssuerClusterRole(); err != nil {
		return fmt.Errorf("installing the issuer's ClusterRole: %w", err)
	}
	return nil
}

// zapLevel keeps the controller's logs (errors included: stopping a manager cancels its
// passes) quiet unless AUTHOPERATOR_TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("AUTHOPERATOR_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.DPanicLevel
}

// ctrlConfigForTests lets several managers of one test binary register the same controller.
func ctrlConfigForTests() config.Controller {
	return config.Controller{SkipNameValidation: ptr.To(true)}
}

// operatorUser creates a user bound to the generated manager-role and nothing else, so the
// tests fail when the RBAC markers miss a permission the controller uses.
func operatorUser() (*rest.Config, error) {
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return nil, fmt.Errorf("parsing role.yaml: %w", err)
	}
	ctx := context.Background()
	if err := k8sClient.Create(ctx, role); err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-operator-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "auth-operator"}},
	}
	if err := k8sClient.Create(ctx, binding); err != nil {
		return nil, err
	}
	user, err := testEnv.AddUser(envtest.User{Name: "auth-operator"}, adminCfg)
	if err != nil {
		return nil, err
	}
	cfg := user.Config()
	// As ctrl.GetConfig does for the real manager: no client-side rate limit, the API
	// server's priority and fairness decides.
	cfg.QPS = -1
	return cfg, nil
}

// installIssuerClusterRole creates the ClusterRole that the operator binds to every issuer,
// from config/rbac/issuer_role.yaml under the name the default kustomization's namePrefix
// gives it, as an install would.
func installIssuerClusterRole() error {
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "issuer_role.yaml"))
	if err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return fmt.Errorf("parsing issuer_role.yaml: %w", err)
	}
	role.Name = "auth-operator-" + role.Name
	if role.Name != authv1alpha1.IssuerClusterRoleName {
		return fmt.Errorf("config/rbac/issuer_role.yaml installs as %s, the operator binds %s", role.Name, authv1alpha1.IssuerClusterRoleName)
	}
	return k8sClient.Create(context.Background(), role)
}

var (
	stopOnce sync.Once
	// envMu guards testEnv between the test that starts it and the signal handler.
	envMu sync.Mutex
)

// stopEnv stops the control plane if a test started it.
func stopEnv() {
	stopOnce.Do(func() {
		envMu.Lock()
		env := testEnv
		envMu.Unlock()
		if env == nil {
			return
		}
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	})
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	requireEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "authsvc-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// startManager runs the controller in a manager like cmd/manager's (same cache filter,
// the operator's RBAC), limited to one namespace, until the test ends or stop is called.
func startManager(t *testing.T, namespace string, clk clock.PassiveClock) (mgr manager.Manager, stop func()) {
	t.Helper()
	cacheOpts := CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	mgr, err := manager.New(operatorCfg, manager.Options{
		Scheme:                 testScheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlConfigForTests(),
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	r := &AuthServiceReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Scheme:             mgr.GetScheme(),
		Recorder:           mgr.GetEventRecorder("auth-operator"),
		Clock:              clk,
		DefaultServerImage: testImage,
	}
	if err := r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 4}); err != nil {
		t.Fatalf("setting up controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("manager did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return mgr, stop
}

// newDirectReconciler builds a reconciler that a test calls by hand, as a freshly started
// operator would run: no cache, no memory of earlier passes, events sent to the API server.
func newDirectReconciler(t *testing.T, clk clock.PassiveClock, c client.Client) *AuthServiceReconciler {
	t.Helper()
	if c == nil {
		var err error
		if c, err = client.New(operatorCfg, client.Options{Scheme: testScheme}); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := kubernetes.NewForConfig(operatorCfg)
	if err != nil {
		t.Fatal(err)
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	stopCh := make(chan struct{})
	broadcaster.StartRecordingToSink(stopCh)
	t.Cleanup(func() { close(stopCh); broadcaster.Shutdown() })
	return &AuthServiceReconciler{
		Client:             c,
		APIReader:          c,
		Scheme:             testScheme,
		Recorder:           broadcaster.NewRecorder(testScheme, "auth-operator"),
		Clock:              clk,
		DefaultServerImage: testImage,
	}
}
