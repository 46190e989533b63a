package install

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// apiServer is the real kube-apiserver (with etcd) every cluster test talks to; k8sClient is an
// administrator's client of it. kubectl and helm reach it through the toolchain's KUBECONFIG.
var (
	apiServer *envtest.Environment
	k8sClient client.Client
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests sets the toolchain and the API server up, runs the tests and tears both down.
// A missing tool fails the run with a message naming the make target that builds it.
func runTests(m *testing.M) int {
	workDir, err := os.MkdirTemp("", "install-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "install tests:", err)
		return 1
	}
	defer os.RemoveAll(workDir)

	tools, err = newToolchain(workDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "install tests cannot run:", err)
		return 1
	}

	apiServer = &envtest.Environment{BinaryAssetsDirectory: tools.bin}
	cfg, err := apiServer.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "install tests: start the API server (run `make controlplane`):", err)
		return 1
	}
	defer func() {
		if err := apiServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "install tests: stop the API server:", err)
		}
	}()

	if err := connect(cfg, filepath.Join(workDir, "kubeconfig")); err != nil {
		fmt.Fprintln(os.Stderr, "install tests:", err)
		return 1
	}
	return m.Run()
}

// connect makes the administrator's client and writes a kubeconfig for kubectl and helm.
func connect(cfg *rest.Config, kubeconfigPath string) error {
	user, err := apiServer.AddUser(envtest.User{Name: "installer", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return fmt.Errorf("add a user to the API server: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	k8sClient, err = client.New(user.Config(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}
