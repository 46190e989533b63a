package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/test/cluster"
	"github.com/hiringo/auth-operator/test/devstack"
)

// options are the command's flags.
type options struct {
	root         string
	controlPlane string
	workDir      string
	samples      string
	readyTimeout time.Duration
	publishTime  time.Duration
}

// stopWithParent asks the kernel to send this process SIGTERM when its parent (the make of
// `make dev`) dies, even by SIGKILL, so that it stops the stack as on Ctrl-C.
func stopWithParent() error {
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	if os.Getppid() != parent {
		return fmt.Errorf("the parent process exited at start")
	}
	return nil
}

func main() {
	// Re-executed as the holder of the node's namespaces, this becomes that.
	cluster.RunHolderIfAsked()
	if err := stopWithParent(); err != nil {
		fmt.Fprintln(os.Stderr, "dev: "+err.Error())
		os.Exit(1)
	}
	var o options
	flag.StringVar(&o.root, "root", ".", "root of the auth-operator checkout")
	flag.StringVar(&o.controlPlane, "control-plane-dir", "bin", "directory of the cluster's binaries (`make controlplane containerd`)")
	flag.StringVar(&o.workDir, "work-dir", ".dev", "directory for the kubeconfig, images, logs and the node's state")
	flag.StringVar(&o.samples, "samples", "config/samples", "AuthService samples to apply")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 3*time.Minute, "how long to wait for the samples to turn Ready")
	flag.DurationVar(&o.publishTime, "min-key-publish-time", devstack.NodeMinKeyPublishTime, "the operator's --min-key-publish-time: the local node's kubelet updates a mounted Secret within about 15 s; 0 keeps the operator's default (5m) of a real cluster")
	flag.Parse()
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "dev: "+err.Error())
		os.Exit(1)
	}
}

// started is when the command started; every step prints the time since.
var started = time.Now()

func step(format string, args ...any) {
	fmt.Printf("==> [%2.0fs] "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

func run(ctx context.Context, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	step("make dev: a local cluster with one real node, the operator and the sample AuthService; Ctrl-C stops everything")

	images := filepath.Join(abs(o.workDir), "images")
	s, err := devstack.Start(ctx, devstack.Options{
		// Built while the cluster starts.
		BuildImages: func(ctx context.Context) ([]string, error) {
			step("building the operator's image and the Redis image (while the cluster starts)")
			operator, err := devstack.BuildOperatorImage(ctx, root, images)
			if err != nil {
				return nil, err
			}
			redis, err := devstack.BuildRedisImage(root, images)
			if err != nil {
				return nil, err
			}
			return []string{operator, redis}, nil
		},
		RepoRoot:          root,
		ControlPlaneDir:   abs(o.controlPlane),
		WorkDir:           abs(o.workDir),
		RunOperator:       true,
		MinKeyPublishTime: o.publishTime,
		Progress:          step,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "dev: stopping:", err)
		}
		step("stopped; logs stay in %s", s.LogsDir())
	}()
	step("kubeconfig written: export KUBECONFIG=%s", s.KubeconfigPath)

	kubectl := filepath.Join(abs(o.controlPlane), "kubectl")
	samples := abs(o.samples)
	step("applying %s to the namespace default (restricted Pod Security Standard)", samples)
	if err := s.RestrictedNamespace(ctx, "default"); err != nil {
		return err
	}
	if err := apply(ctx, kubectl, s.KubeconfigPath, samples); err != nil {
		return err
	}

	keys, err := authServices(ctx, s)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s holds no AuthService", samples)
	}
	for _, key := range keys {
		step("waiting for AuthService %s to be Ready", key)
		if err := s.WaitReady(ctx, key, o.readyTimeout, func(msg string) { fmt.Printf("    %s\n", msg) }); err != nil {
			return fmt.Errorf("%w\n    operator log: %s\n    node logs: %s", err, s.ManagerLog, s.LogsDir())
		}
	}
	step("ready in %s", time.Since(started).Round(time.Second))

	for _, key := range keys {
		if err := printUsage(ctx, s, key, kubectl); err != nil {
			return err
		}
	}
	fmt.Println()
	step("running; Ctrl-C stops every process and removes %s", filepath.Join(abs(o.workDir), "run"))
	<-ctx.Done()
	fmt.Println()
	return nil
}

// apply runs kubectl apply on the samples: with kustomize when they have a
// kustomization.yaml, as plain files otherwise.
func apply(ctx context.Context, kubectl, kubeconfig, samples string) error {
	args := []string{"--kubeconfig", kubeconfig, "apply", "-f", samples}
	if _, err := os.Stat(filepath.Join(samples, "kustomization.yaml")); err == nil {
		args = []string{"--kubeconfig", kubeconfig, "apply", "-k", samples}
	}
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl apply of %s: %w", samples, err)
	}
	return nil
}

func authServices(ctx context.Context, s *devstack.Stack) ([]types.NamespacedName, error) {
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	var list authv1alpha1.AuthServiceList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing AuthServices: %w", err)
	}
	var keys []types.NamespacedName
	for _, as := range list.Items {
		keys = append(keys, types.NamespacedName{Namespace: as.Namespace, Name: as.Name})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys, nil
}

// printUsage prints the verifier's and the issuer's local URLs and the commands that run a
// session through the API, as the platform's login service would: a token of the sample's
// ServiceAccount for the audience status.issuer, issuance, verify, refresh and logout.
func printUsage(ctx context.Context, s *devstack.Stack, key types.NamespacedName, kubectl string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	var as authv1alpha1.AuthService
	if err := c.Get(ctx, key, &as); err != nil {
		return err
	}
	verifier, err := s.ServiceURL(ctx, as.Status.ServerURL)
	if err != nil {
		return err
	}
	issuer, err := s.ServiceURL(ctx, as.Status.IssuerURL)
	if err != nil {
		return err
	}
	fmt.Printf(`
AuthService %s is Ready.
  verifier (status.serverURL %s): %s (its ClusterIP, which the host reaches)
  issuer   (status.issuerURL %s): %s
  tokens' iss and the callers' audience (status.issuer): %s
`, key, as.Status.ServerURL, verifier, as.Status.IssuerURL, issuer, as.Status.Issuer)
	if len(as.Spec.Issuance.Clients) == 0 {
		fmt.Printf("  spec.issuance.clients is empty: no caller may obtain tokens (list a ServiceAccount there)\n")
	} else {
		client := as.Spec.Issuance.Clients[0]
		fmt.Printf(`
  export KUBECONFIG=%s
  # 1. a token of the caller allowed in spec.issuance.clients, for the audience status.issuer
  SA_TOKEN=$(%s -n %s create token %s --audience '%s')
  # 2. a session for a user (the login service has checked the password): 200 with the login payload
  LOGIN=$(curl -s -X POST -H "Authorization: Bearer $SA_TOKEN" -H 'Content-Type: application/json' \
    -d '{"id":"u-1","email":"u@example.com","name":"U"}' %s/auth/token); echo "$LOGIN"
  TOKEN=$(printf '%%s' "$LOGIN" | sed -E 's/.*"token":"([^"]*)".*/\1/')
  REFRESH=$(printf '%%s' "$LOGIN" | sed -E 's/.*"refresh_token":"([^"]*)".*/\1/')
  # 3. forward-auth check on the verifier: 200 with X-Auth-User-Id
  curl -i -H "Authorization: Bearer $TOKEN" %s/auth/verify
  # 4. refresh: 201 with a new pair under a new stamp; the old access token is rejected after it
  REFRESHED=$(curl -s -H "Authorization: Bearer $REFRESH" %s/auth/refresh); echo "$REFRESHED"
  curl -s -H "Authorization: Bearer $TOKEN" %s/auth/verify; echo
  TOKEN=$(printf '%%s' "$REFRESHED" | sed -E 's/.*"token":"([^"]*)".*/\1/')
  REFRESH=$(printf '%%s' "$REFRESHED" | sed -E 's/.*"refresh_token":"([^"]*)".*/\1/')
  # 5. log out: 200; the session's refresh token then fails and its access token is blacklisted
  curl -s -X POST -H "Authorization: Bearer $TOKEN" %s/auth/logout; echo
  curl -s -H "Authorization: Bearer $REFRESH" %s/auth/refresh; echo
  curl -s -H "Authorization: Bearer $TOKEN" %s/auth/verify; echo
  # log out everywhere (every session of the user): POST %s/auth/logout/all with an access token
`, s.KubeconfigPath, kubectl, client.Namespace, client.ServiceAccountName, as.Status.Issuer,
			issuer, verifier, issuer, verifier, verifier, issuer, verifier, verifier)
	}
	fmt.Printf(`
  # the published keys, and the cluster
  curl -s %s/.well-known/jwks.json
  KUBECONFIG=%s %s get nodes,authservices,pods,endpointslices,pvc -A -o wide

  logs: %s (operator, kubelet, containerd, kube-apiserver, ...); pods' logs with kubectl logs
`, verifier, s.KubeconfigPath, kubectl, s.LogsDir())
	return nil
}
