package e2e

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hiringo/auth-operator/internal/release"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/test/cluster"
	"github.com/hiringo/auth-operator/test/devstack"
)

// The operator as dist/install.yaml installs it.
const (
	operatorNamespace  = "auth-operator-system"
	operatorDeployment = "auth-operator-controller-manager"
)

// minKeyPublishTime is spec.signingKeys.minPublishTime of the suite's AuthServices that
// rotate: the node's kubelet updates a mounted Secret within about 15 s, so rotations need
// not wait the five minutes of a real cluster's default.
const minKeyPublishTime = devstack.NodeMinKeyPublishTime

// Tests that install the operator themselves (install_helm_test.go, install_upgrade_test.go)
// are sequential and, by their files' names, run first: Go runs the sequential tests in the
// order of their files, each alone, before the parallel ones resume, and the first of those
// to need the operator installs the release's install.yaml (operatorInstalled), whose
// cluster-scoped objects bear the chart's names. The node-faults test, sequential too, runs
// after them (nodefaults_test.go) and installs it.

// The one local cluster every test of the package shares (each test uses its own namespace),
// its administrator's clients, and the checkout.
var (
	stack     *devstack.Stack
	kube      client.Client
	clientset *kubernetes.Clientset
	repoRoot  string
	// controlPlaneDir holds the cluster's binaries and the pinned tools (helm).
	controlPlaneDir string
	// released is the release the suite installs: its image, install.yaml and chart.
	released release.Artifacts
)

// releaseVersion is the version of the release the suite builds and installs.
const releaseVersion = "v0.0.0-e2e"

// suiteParallelism is how many tests run at once unless -parallel says otherwise: they wait
// on the cluster far more than they compute, so more than the 2 CPUs' default.
const suiteParallelism = "4"

func TestMain(m *testing.M) {
	// Re-executed as the holder of the node's namespaces, this becomes that.
	cluster.RunHolderIfAsked()
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", suiteParallelism)
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	var err error
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	controlPlaneDir = os.Getenv("KUBEBUILDER_ASSETS")
	if controlPlaneDir == "" {
		controlPlaneDir = filepath.Join(repoRoot, "bin")
	}
	work, err := os.MkdirTemp("", "auth-operator-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(work)
	progress := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" e2e: "+format+"\n", args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stack, err = devstack.Start(ctx, devstack.Options{
		RepoRoot: repoRoot, ControlPlaneDir: controlPlaneDir, WorkDir: work, Progress: progress,
		// Built while the cluster starts.
		BuildImages: func(ctx context.Context) ([]string, error) {
			progress("building a release as `make release` does (this machine's platform) and the Redis image")
			var err error
			if released, err = release.Build(ctx, release.Options{
				Module: repoRoot, Version: releaseVersion, Revision: devstack.GitRevision(repoRoot), Out: filepath.Join(work, "release"),
				ImagePlatforms: []string{"linux/" + runtime.GOARCH},
				Kustomize:      filepath.Join(controlPlaneDir, "kustomize"), Helm: filepath.Join(controlPlaneDir, "helm"),
			}); err != nil {
				return nil, fmt.Errorf("building the release: %w", err)
			}
			redisImage, err := devstack.BuildRedisImage(repoRoot, filepath.Join(work, "images"))
			if err != nil {
				return nil, err
			}
			return []string{released.ImageArchive, redisImage}, nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting the local cluster:", err)
		return 1
	}
	code := 1
	defer func() {
		if code != 0 {
			dumpLogs()
		}
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
			code = 1
		}
	}()
	if kube, err = stack.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	if clientset, err = kubernetes.NewForConfig(stack.Config); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	code = m.Run()
	return code
}

// installOperator installs the operator as the README tells users, from the release the suite
// built (kubectl apply --server-side -f install.yaml, whose manager runs the released image,
// pinned by digest) and waits until the manager is available.
func installOperator(ctx context.Context) error {
	if _, err := stack.Kubectl(ctx, "apply", "--server-side", "-f", released.InstallYAML); err != nil {
		return err
	}
	return waitDeploymentAvailable(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: operatorDeployment}, 2*time.Minute)
}

// waitDeploymentAvailable waits until every replica of a Deployment is updated and available.
func waitDeploymentAvailable(ctx context.Context, key types.NamespacedName, timeout time.Duration) error {
	return poll.UntilContext(ctx, timeout, func() error {
		var d appsv1.Deployment
		if err := kube.Get(ctx, key, &d); err != nil {
			return err
		}
		st := d.Status
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
			return fmt.Errorf("Deployment %s: %+v", key, st)
		}
		return nil
	})
}

// dumpLogs prints, after a failure, the tail of the operator's log and of the node's logs.
func dumpLogs() {
	ctx := context.Background()
	if out, err := stack.Kubectl(ctx, "-n", operatorNamespace, "logs", "deploy/"+operatorDeployment, "--tail=200"); err == nil {
		fmt.Fprintf(os.Stderr, "---- the operator's log (tail) ----\n%s\n", out)
	}
	for _, name := range []string{"kubelet", "containerd", "kube-controller-manager"} {
		data, err := tailOf(filepath.Join(stack.LogsDir(), name+".log"), 8000)
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "---- %s (tail) ----\n%s\n", name, data)
	}
}

// tailOf returns the last n bytes of the file at path (all of it when shorter).
func tailOf(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return data, err
}
