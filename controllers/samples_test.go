package controllers

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// TestSamples_KubectlApplyBecomesReady applies config/samples/ with kubectl, plays the
// workload controllers, and waits for Ready with `kubectl wait`, as a user would.
func TestSamples_KubectlApplyBecomesReady(t *testing.T) {
	requireEnv(t)
	kubectl := filepath.Join(testEnv.BinaryAssetsDirectory, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("kubectl is not in %s (run `make controlplane`): %v", testEnv.BinaryAssetsDirectory, err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}

	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	out := run("apply", "-f", filepath.Join("..", "config", "samples"))
	raw, err := os.ReadFile(filepath.Join("..", "config", "samples", "auth_v1alpha1_authservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	name := sample.Metadata.Name
	if !strings.Contains(out, "authservice.auth.hiringo.tech/"+name+" created") {
		t.Fatalf("kubectl apply said: %s", out)
	}

	poll.Until(t, waitTimeout, "sample workloads", func() error {
		for _, kind := range []string{"statefulset/" + named(ns, name).RedisName(), "deployment/" + named(ns, name).ServerName()} {
			cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "-n", ns, "get", kind)
			if err := cmd.Run(); err != nil {
				return errorf("%s: %v", kind, err)
			}
		}
		return nil
	})
	markStatefulSetAvailable(t, ns, named(ns, name).RedisName())
	markDeploymentAvailable(t, ns, named(ns, name).ServerName())
	markDeploymentAvailable(t, ns, named(ns, name).IssuerName())
	run("wait", "--for=condition=Ready", "authservice/"+name, "--timeout=30s")

	table := run("get", "authsvc", name)
	if !strings.Contains(table, "READY") || !strings.Contains(table, "ACTIVE KEY") || !strings.Contains(table, "True") {
		t.Errorf("kubectl get authsvc:\n%s", table)
	}
	t.Logf("kubectl get authsvc:\n%s", table)
	wide := run("get", "auth", "-o", "wide")
	t.Logf("kubectl get auth -o wide:\n%s", wide)
	if !strings.Contains(wide, "http://"+name+"-authserver."+ns+".svc") {
		t.Errorf("kubectl get auth -o wide (the category) lacks the URL:\n%s", wide)
	}
}
