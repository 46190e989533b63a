package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// The suite runs the plugin against a real kube-apiserver (envtest) with the real operator
// reconciling every namespace, as a cluster would; each test works in its own namespace.
var (
	kubeconfig string
	k8sClient  client.Client
)

// unwatchedNamespace is the one namespace the suite's operator does not reconcile.
const unwatchedNamespace = "authsvc-unwatched"

// minKeyPublishTime is the operator's --min-key-publish-time here: its floor, so that a
// requested rotation can happen a second after the next key was published.
const minKeyPublishTime = time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The unit tier starts no process: the tests of the suite skip (needSuite).
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

// needSuite skips t under -short, where the suite's API server and operator do not run.
func needSuite(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs against kube-apiserver and the operator: not in -short")
	}
}

func runSuite(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", "bin")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest with binaries from %s (run `make controlplane`): %v\n", assets, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()

	user, err := env.AddUser(envtest.User{Name: "platform-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "add user:", err)
		return 1
	}
	data, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-authsvc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}

	// The operator, set up as cmd/manager sets it up.
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{
		cache.AllNamespaces: {FieldSelector: fields.OneTermNotEqualSelector("metadata.namespace", unwatchedNamespace)},
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	reconciler := &controllers.AuthServiceReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Scheme:             mgr.GetScheme(),
		Recorder:           mgr.GetEventRecorder("auth-operator"),
		Clock:              clock.RealClock{},
		DefaultServerImage: "ghcr.io/hiringo/auth-operator:test",
		MinKeyPublishTime:  minKeyPublishTime,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		fmt.Fprintln(os.Stderr, "controller:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped with:", err)
		}
	}()
	return m.Run()
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	needSuite(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "authsvc-plugin-"}}
	if err := k8sClient.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// createNamespaceNamed creates the namespace name.
func createNamespaceNamed(t *testing.T, name string) {
	t.Helper()
	needSuite(t)
	if err := k8sClient.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// createAuthService creates an AuthService with the defaults.
func createAuthService(t *testing.T, namespace, name string) {
	t.Helper()
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := k8sClient.Create(t.Context(), as); err != nil {
		t.Fatalf("create AuthService: %v", err)
	}
}

// getAuthService reads an AuthService.
func getAuthService(t *testing.T, namespace, name string) *authv1alpha1.AuthService {
	t.Helper()
	as := &authv1alpha1.AuthService{}
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, as); err != nil {
		t.Fatal(err)
	}
	return as
}

// waitKeys waits until the operator reports an active and a next key.
func waitKeys(t *testing.T, namespace, name string) *authv1alpha1.AuthService {
	t.Helper()
	var as *authv1alpha1.AuthService
	poll.Until(t, time.Minute, "the operator to report the keys of "+namespace+"/"+name, func() error {
		as = getAuthService(t, namespace, name)
		if as.Status.ActiveKeyID == "" || as.Status.NextKeyID == "" {
			return fmt.Errorf("status: %+v", as.Status)
		}
		return nil
	})
	return as
}

// plugin runs the plugin's command tree with args against the test API server and returns
// what it printed.
func plugin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}
