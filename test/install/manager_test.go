package install

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
)

const (
	// managerTimeout bounds the wait for the manager to become ready and elect itself.
	managerTimeout = 90 * time.Second
	// leaseName is the manager's leader-election Lease.
	leaseName = "auth-operator.auth.hiringo.tech"
)

// managerBinary is /manager of the image, built as the image recipe builds it.
func managerBinary(t *testing.T) string {
	t.Helper()
	return imageBinary(t, "manager")
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
	known := managerFlags(t, managerBinary(t))
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

// managerAccount is the identity a manager runs as: its ServiceAccount's user name and groups,
// as the API server sees a pod's token.
func managerAccount(namespace, name string) envtest.User {
	return envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

// runningManager is a manager binary serving on loopback ports.
type runningManager struct {
	probePort, metricsPort int
	logs                   string        // file of its output
	exited                 chan struct{} // closed when the process has exited
	exitErr                error         // what Wait returned, once exited is closed
}

// waitAuthorized waits until the API server's authorizer, whose RBAC cache trails the objects
// just applied, lets user do what the manager does first: take its Lease, list AuthServices
// everywhere and record events. A permission that never arrives fails the test.
func waitAuthorized(t *testing.T, user envtest.User, leaseNamespace string) {
	t.Helper()
	checks := []authorizationv1.ResourceAttributes{
		{Namespace: leaseNamespace, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"},
		{Verb: "list", Group: "auth.hiringo.tech", Resource: "authservices"},
		{Verb: "watch", Resource: "secrets"},
		{Verb: "create", Group: "events.k8s.io", Resource: "events"},
	}
	for _, check := range checks {
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user.Name, Groups: user.Groups, ResourceAttributes: &check,
			}}
			if err := k8sClient.Create(ctx, sar); err != nil {
				return false, err
			}
			return sar.Status.Allowed, nil
		})
		if err != nil {
			t.Fatalf("%s may not %s %s.%s in %q: %v", user.Name, check.Verb, check.Resource, check.Group, check.Namespace, err)
		}
	}
}

// portAttempts bounds how often startManager picks new ports when another process took one
// between freePort and the manager's bind.
const portAttempts = 3

// startManager runs the manager binary with a Deployment's arguments as user (the addresses are
// moved to free loopback ports, and the leader-election namespace is named because the manager
// cannot read it from a service account mount here), and waits until /readyz answers.
func startManager(t *testing.T, binary string, args, env []string, user envtest.User, leaseNamespace string) *runningManager {
	t.Helper()
	waitAuthorized(t, user, leaseNamespace)
	authn, err := apiServer.AddUser(user, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", user.Name, err)
	}
	kubeconfig, err := authn.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(slices.Clone(env), "KUBECONFIG="+kubeconfigPath)

	for attempt := 1; ; attempt++ {
		m := launchManager(t, binary, args, env, leaseNamespace)
		err := waitReady(t, m)
		if err == nil {
			return m
		}
		out, _ := os.ReadFile(m.logs)
		if attempt < portAttempts && bytes.Contains(out, []byte("address already in use")) {
			t.Logf("a port was taken before the manager bound it; trying others (%v)", err)
			continue
		}
		t.Fatalf("the manager did not become ready: %v\n%s", err, out)
	}
}

// launchManager starts the manager on fresh loopback ports. The test's cleanup stops it with
// SIGTERM and expects a clean exit.
func launchManager(t *testing.T, binary string, args, env []string, leaseNamespace string) *runningManager {
	t.Helper()
	m := &runningManager{
		probePort:   loopback.FreePort(t),
		metricsPort: loopback.FreePort(t),
		logs:        filepath.Join(t.TempDir(), "manager.log"),
		exited:      make(chan struct{}),
	}
	var runArgs []string
	for _, arg := range args {
		switch flagName(arg) {
		case "health-probe-bind-address":
			arg = fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", m.probePort)
		case "metrics-bind-address":
			arg = fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", m.metricsPort)
		}
		runArgs = append(runArgs, arg)
	}
	runArgs = append(runArgs, "--leader-election-namespace="+leaseNamespace)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, runArgs...)
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	logs, err := os.Create(m.logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the manager: %v", err)
	}
	go func() {
		m.exitErr = cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		stoppedBefore := false
		select {
		case <-m.exited:
			stoppedBefore = true // startManager reported why
		default:
		}
		cancel()
		select {
		case <-m.exited:
			// After a cancel Wait reports the context's error even when the process exited 0.
			if !stoppedBefore && m.exitErr != nil && (cmd.ProcessState == nil || !cmd.ProcessState.Success()) {
				t.Errorf("the manager did not stop cleanly on SIGTERM: %v", m.exitErr)
			}
		case <-time.After(cmd.WaitDelay + 5*time.Second):
			t.Error("the manager did not stop after SIGTERM")
		}
		logs.Close()
		if t.Failed() {
			out, _ := os.ReadFile(m.logs)
			t.Logf("manager output:\n%s", out)
		}
	})
	return m
}

// waitReady waits until the manager's /readyz answers 200, and gives up as soon as it exits.
func waitReady(t *testing.T, m *runningManager) error {
	t.Helper()
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", m.probePort)
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, managerTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-m.exited:
			return false, errors.New("the manager exited")
		default:
		}
		code, err := httpStatus(ctx, readyz)
		return err == nil && code == http.StatusOK, nil
	})
	select {
	case <-m.exited:
		return fmt.Errorf("the manager exited before it was ready: %w", m.exitErr)
	default:
	}
	if err != nil {
		return fmt.Errorf("%s did not answer 200 within %s: %w", readyz, managerTimeout, err)
	}
	return nil
}

// insecureClient calls the manager's endpoints; the metrics certificate is self-signed.
var insecureClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

// httpStatus returns the status code of a GET.
func httpStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := insecureClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// assertServesAndLeads checks that a ready manager's liveness probe answers and that it holds
// the leader-election Lease in leaseNamespace.
func assertServesAndLeads(t *testing.T, m *runningManager, leaseNamespace string) {
	t.Helper()
	if code, err := httpStatus(t.Context(), fmt.Sprintf("http://127.0.0.1:%d/healthz", m.probePort)); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %v", code, err)
	}
	var lease coordinationv1.Lease
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, managerTimeout, true, func(ctx context.Context) (bool, error) {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: leaseName}, &lease)
		return err == nil && lease.Spec.HolderIdentity != nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Errorf("the manager did not take the leader-election Lease %s/%s within %s: %v", leaseNamespace, leaseName, managerTimeout, err)
	}
}

// assertReconcilesSample applies config/samples into namespace and waits until the manager has
// built the AuthService's keys and auth server (from serverImage): what it can only do with
// enough RBAC. Its logs must not show a single forbidden request.
func assertReconcilesSample(t *testing.T, m *runningManager, namespace, serverImage string) {
	t.Helper()
	createNamespace(t, namespace, nil)
	tools.mustRun(t, nil, tools.kubectl, "apply", "--namespace", namespace, "-f", "config/samples/")
	deleteAuthServicesWhileTheOperatorRuns(t, namespace)
	server := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-authserver"}}
	// The issuer's objects, its RBAC included, show the install's RBAC lets the operator
	// grant what the issuer needs (bind on auth-operator-issuer, a Role it holds itself).
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-signing-keys"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-jwks"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-public-keys"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-redis"}},
		server,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-authserver"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-issuer"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-issuer"}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-issuer"}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: (&authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth"}}).IssuerClusterRoleBindingName()}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-issuer"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "auth-issuer"}},
	} {
		waitForObject(t, obj)
	}
	if got := container(t, &server.Spec.Template.Spec, "authserver").Image; got != serverImage {
		t.Errorf("the auth server runs %q, want the operator's own image %q", got, serverImage)
	}
	as := &unstructured.Unstructured{}
	as.SetGroupVersionKind(authServiceGVK)
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, operatorTimeout, true, func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "auth"}, as); err != nil {
			return false, err
		}
		kid, _, _ := unstructured.NestedString(as.Object, "status", "activeKeyID")
		return kid != "", nil
	})
	if err != nil {
		t.Errorf("the manager wrote no status.activeKeyID within %s: %v", operatorTimeout, err)
	}
	out, err := os.ReadFile(m.logs)
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			refused = append(refused, line)
		}
	}
	if len(refused) > 0 {
		t.Errorf("the API server refused the manager; its RBAC is short of what it does:\n%s", strings.Join(refused, "\n"))
	}
}

// The chart's own arguments and RBAC run the real manager: probes answer, metrics demand
// authentication, the manager wins the leader election, and as its ServiceAccount it
// reconciles the sample AuthService.
func TestManager_RunsWithTheChartsArgumentsAndRBAC(t *testing.T) {
	const ns = "chart-manager"
	deleteCRDAfterwardsIfNew(t, authServiceCRD)
	createNamespace(t, ns, nil)
	rendered := tools.helmTemplate(t, "ops", ns, nil)
	applyServerSide(t, rendered)
	waitCRDEstablished(t, authServiceCRD)

	objs := decodeObjects(t, rendered)
	d := deployment(t, objs)
	manager := container(t, &d.Spec.Template.Spec, "manager")
	if manager.Image == "" || !slices.Contains(manager.Args, "--authserver-image="+manager.Image) {
		t.Fatalf("the chart does not pass the manager's own image %q as --authserver-image: %v", manager.Image, manager.Args)
	}
	account := managerAccount(ns, d.Spec.Template.Spec.ServiceAccountName)
	m := startManager(t, managerBinary(t), manager.Args, tools.env, account, ns)

	assertServesAndLeads(t, m, ns)
	assertReachesOnlyItsClusterRoleBindings(t, account)
	reader := assertMetricsNeedTheReaderRole(t, m, ns, "ops-auth-operator-metrics-reader")
	assertReconcilesSample(t, m, "chart-sample", manager.Image)
	assertManagerServesMonitoredMetrics(t, m, reader)
}
