package install

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// buildTimeout bounds `go build ./cmd/manager`, which compiles client-go on a cold cache.
	buildTimeout = 10 * time.Minute
	// managerTimeout bounds the wait for the manager to become ready and elect itself.
	managerTimeout = 90 * time.Second
	// leaseName is the manager's leader-election Lease.
	leaseName = "auth-operator.auth.hiringo.tech"
)

// buildManager compiles cmd/manager into a temporary folder.
func buildManager(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "manager")
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, "./cmd/manager")
	cmd.Dir = tools.root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manager: %v\n%s", err, msg)
	}
	return out
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// managerFlags lists the flags the manager binary defines, from its -help output.
func managerFlags(t *testing.T, manager string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), manager, "-help")
	out, _ := cmd.CombinedOutput() // -help exits 0 or 2 depending on the flag package
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	if !slices.Contains(flags, "authserver-image") {
		t.Fatalf("cannot read the manager's flags from -help:\n%s", out)
	}
	return flags
}

// flagName returns the name of a --name[=value] argument.
func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

func TestManager_AcceptsTheArgumentsOfEveryInstall(t *testing.T) {
	known := managerFlags(t, buildManager(t))
	sources := map[string][]byte{
		"chart, default values":   tools.helmTemplate(t, "ops", "ops", nil),
		"chart, every feature on": tools.helmTemplate(t, "ops", "ops", []string{allFeaturesValues}),
		"dist/install.yaml":       readFile(t, installYAML),
	}
	for name, manifests := range sources {
		manager := container(t, &deployment(t, decodeObjects(t, manifests)).Spec.Template.Spec, "manager")
		if !slices.Equal(manager.Command, []string{"/manager"}) {
			t.Errorf("%s: command %v, want [/manager]", name, manager.Command)
		}
		for _, arg := range manager.Args {
			if !slices.Contains(known, flagName(arg)) {
				t.Errorf("%s: the manager has no flag %q", name, arg)
			}
		}
	}
}

// The chart's own arguments start the real manager against the API server: probes answer,
// metrics demand authentication, and the manager wins the leader election.
func TestManager_RunsWithTheChartsArguments(t *testing.T) {
	const ns = "manager-run"
	if crd(t, authServiceCRD) == nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deletionTimeout)
			defer cancel()
			deleteCRD(ctx, t, authServiceCRD)
		})
	}
	tools.mustRun(t, nil, tools.kubectl, "apply", "--server-side", "-f", "config/crd/bases")
	waitCRDEstablished(t, authServiceCRD)
	createNamespace(t, ns, nil)

	probePort, metricsPort := freePort(t), freePort(t)
	rendered := tools.helmTemplate(t, "ops", ns, nil,
		fmt.Sprintf("healthProbe.port=%d", probePort),
		fmt.Sprintf("metrics.port=%d", metricsPort),
		// Out of a cluster the manager cannot read its namespace from the service account mount.
		"extraArgs={--leader-election-namespace="+ns+"}",
	)
	args := container(t, &deployment(t, decodeObjects(t, rendered)).Spec.Template.Spec, "manager").Args

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, buildManager(t), args...)
	cmd.Env = tools.env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	logs, err := os.Create(filepath.Join(t.TempDir(), "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the manager: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("manager output:\n%s", out)
		}
	})

	httpClient := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the metrics certificate is self-signed
	}
	status := func(ctx context.Context, url string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, managerTimeout, true, func(ctx context.Context) (bool, error) {
		code, err := status(ctx, readyz)
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s did not answer 200 within %s", readyz, managerTimeout)
	}
	if code, err := status(t.Context(), fmt.Sprintf("http://127.0.0.1:%d/healthz", probePort)); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %v", code, err)
	}
	if code, err := status(t.Context(), fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token answered %d (%v), want 401: metrics must be authenticated", code, err)
	}

	var lease coordinationv1.Lease
	err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, managerTimeout, true, func(ctx context.Context) (bool, error) {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease)
		return err == nil && lease.Spec.HolderIdentity != nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Errorf("the manager did not take the leader-election Lease %s/%s within %s: %v", ns, leaseName, managerTimeout, err)
	}
}
