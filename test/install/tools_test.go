package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds every external command a test runs.
const commandTimeout = 3 * time.Minute

// toolchain locates the repository and the tools the tests drive.
type toolchain struct {
	root      string // repository root
	workDir   string // temporary folder of the test run
	bin       string // <root>/bin, also the envtest assets folder
	helm      string
	kubectl   string
	kustomize string
	promtool  string
	// env is the environment of every command: the kubeconfig, kubectl's cache and Helm's
	// folders point into a temporary folder, so the tests never touch the user's.
	env []string
}

// tools is set up by TestMain.
var tools *toolchain

// findRepoRoot walks up from the working directory to the folder holding go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// requireTool returns the executable at path, or an error naming the make target that builds it.
func requireTool(path, makeTarget string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s is missing: run `make %s` (or `make test`, which builds every tool): %w", path, makeTarget, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable: run `make %s`", path, makeTarget)
	}
	return path, nil
}

// newToolchain finds the repository, the tools (HELM, KUSTOMIZE, KUBECTL and PROMTOOL override the
// ones in bin/) and the control-plane binaries; a missing one is an error naming its make target.
func newToolchain(workDir string) (*toolchain, error) {
	root, err := findRepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin")
	if assets := os.Getenv("KUBEBUILDER_ASSETS"); assets != "" {
		bin = assets
	}
	pick := func(envVar, name string) string {
		if p := os.Getenv(envVar); p != "" {
			return p
		}
		return filepath.Join(bin, name)
	}
	tc := &toolchain{root: root, bin: bin, workDir: workDir}
	var errs []error
	for _, tool := range []struct {
		dst              *string
		path, makeTarget string
	}{
		{&tc.helm, pick("HELM", "helm"), "helm"},
		{&tc.kustomize, pick("KUSTOMIZE", "kustomize"), "kustomize"},
		{&tc.kubectl, pick("KUBECTL", "kubectl"), "controlplane"},
		{&tc.promtool, pick("PROMTOOL", "promtool"), "promtool"},
		{new(string), filepath.Join(bin, "kube-apiserver"), "controlplane"},
		{new(string), filepath.Join(bin, "etcd"), "controlplane"},
	} {
		p, err := requireTool(tool.path, tool.makeTarget)
		errs = append(errs, err)
		*tool.dst = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tc.env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(workDir, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(workDir, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(workDir, "helm-data"),
		"KUBECONFIG="+filepath.Join(workDir, "kubeconfig"),
		"KUBECACHEDIR="+filepath.Join(workDir, "kube-cache"),
	)
	return tc, nil
}

// result is what a command printed.
type result struct {
	stdout, stderr string
}

// run runs a tool in the repository root with stdin (may be nil) and returns what it printed;
// the error carries the command line and its stderr.
func (tc *toolchain) run(ctx context.Context, stdin []byte, name string, args ...string) (result, error) {
	return tc.runIn(ctx, tc.root, stdin, name, args...)
}

// runIn is run in the folder dir.
func (tc *toolchain) runIn(ctx context.Context, dir string, stdin []byte, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = tc.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		return res, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, res.stderr)
	}
	return res, nil
}

// mustRun is run that fails the test on error.
func (tc *toolchain) mustRun(t *testing.T, stdin []byte, name string, args ...string) result {
	t.Helper()
	res, err := tc.run(t.Context(), stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// chartDir is the chart, relative to the repository root.
const chartDir = "charts/auth-operator"

// kubeVersion is the Kubernetes version `helm template` renders for: the envtest API server's.
const kubeVersion = "1.37.2"

// helmTemplate renders the chart as release name in namespace with the given values files
// (relative to the repository root) and --set flags.
func (tc *toolchain) helmTemplate(t *testing.T, release, namespace string, valuesFiles []string, set ...string) []byte {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return []byte(tc.mustRun(t, nil, tc.helm, args...).stdout)
}
