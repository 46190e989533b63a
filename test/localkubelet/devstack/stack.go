package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hiringo/auth-operator/test/localkubelet"
)

// DefaultOperatorImage is the image the local operator is told it runs (the Makefile's
// IMG); the local kubelet maps it to the locally built auth server.
const DefaultOperatorImage = "ghcr.io/hiringo/auth-operator:dev"

// NodeName is the Node the local kubelet registers.
const NodeName = "localkubelet"

// KubernetesVersion is the version of the control plane hack/controlplane pins, which the
// local kubelet's Node reports.
const KubernetesVersion = "v1.37.2"

// LocalMinKeyPublishTime is a minimum publish time of a next key that suits the local
// kubelet: it updates a mounted Secret about a second after the change (the ResyncPeriod of
// localkubelet.Runner), where a real kubelet takes a minute or two.
const LocalMinKeyPublishTime = 3 * time.Second

// Options configure a Stack.
type Options struct {
	// RepoRoot is the root of the auth-operator checkout (for go build and the CRDs).
	RepoRoot string
	// ControlPlaneDir holds kube-apiserver, etcd, kube-controller-manager, kube-scheduler
	// and kubectl (`make controlplane`).
	ControlPlaneDir string
	// WorkDir receives the binaries ("bin/"), the kubeconfig, the control plane's keys
	// ("pki/"), the logs ("logs/") and the local kubelet's pods and volumes ("run/").
	WorkDir string
	// OperatorImage is passed as --authserver-image; DefaultOperatorImage when empty.
	OperatorImage string
	// MinKeyPublishTime is passed as --min-key-publish-time; zero keeps the operator's
	// default of five minutes.
	MinKeyPublishTime time.Duration
	// Progress receives one line per step; nil discards them.
	Progress func(format string, args ...any)
	// ProcessOutput, when set, receives the output of every pod's containers.
	ProcessOutput io.Writer
}

// Stack is a running local system.
type Stack struct {
	// Config reaches the local API server as an administrator.
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file for kubectl and the operator.
	KubeconfigPath string
	// AuthServerPath and ManagerPath are the binaries the stack built.
	AuthServerPath string
	ManagerPath    string
	// ManagerLog and RunnerLog are the log files of the operator and the local kubelet;
	// kube-controller-manager and kube-scheduler log next to them (LogsDir).
	ManagerLog string
	RunnerLog  string
	// Runner is the local kubelet.
	Runner *localkubelet.Runner

	opts        Options
	env         *envtest.Environment
	controllers []*controlPlaneProcess
	manager     *exec.Cmd
	managerDone chan error
	runnerStop  context.CancelFunc
	runnerDone  chan error
	runnerLog   *os.File
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// Start builds the binaries, starts the control plane (etcd and kube-apiserver with the
// CRDs, kube-controller-manager, kube-scheduler), the operator and the local kubelet. On
// error everything already started is stopped again. The program must call
// RunShimIfAsked first.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if opts.OperatorImage == "" {
		opts.OperatorImage = DefaultOperatorImage
	}
	s = &Stack{opts: opts}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	for _, bin := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(opts.ControlPlaneDir, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make controlplane` first (it builds the control plane, several minutes the first time)", bin, opts.ControlPlaneDir)
		}
	}
	redisPath, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not on PATH: run `make redis-server` (Debian package redis-server)")
	}
	// A run that was killed may have left its run/ folder (pods, volumes, etcd's data).
	if err := os.RemoveAll(filepath.Join(opts.WorkDir, "run")); err != nil {
		return nil, fmt.Errorf("removing the previous run's folder: %w", err)
	}
	for _, d := range []string{"bin", "logs", "run", "pki", filepath.Join("run", "etcd"), filepath.Join("run", "apiserver")} {
		if err := os.MkdirAll(filepath.Join(opts.WorkDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating work directory: %w", err)
		}
	}

	opts.progress("building the operator and the auth server")
	s.ManagerPath = filepath.Join(opts.WorkDir, "bin", "manager")
	s.AuthServerPath = filepath.Join(opts.WorkDir, "bin", "authserver")
	// One go build for both: they share most packages, which one invocation compiles once.
	if err := goBuild(ctx, opts.RepoRoot, filepath.Join(opts.WorkDir, "bin"), "./cmd/manager", "./cmd/authserver"); err != nil {
		return nil, err
	}

	opts.progress("starting etcd and kube-apiserver from %s, installing the CRDs", opts.ControlPlaneDir)
	assets, err := shimDir(opts.WorkDir, opts.ControlPlaneDir)
	if err != nil {
		return nil, err
	}
	s.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(opts.RepoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// etcd's data and the API server's certificates under run/, which Stop removes and the
	// next Start clears, rather than in folders of their own that a killed run would leave.
	// The paths are set, not left to envtest, which would prefer $KUBEBUILDER_ASSETS (make
	// exports it) to the links.
	s.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(opts.WorkDir, "run", "etcd"), Path: filepath.Join(assets, "etcd")}
	apiServer := s.env.ControlPlane.GetAPIServer()
	apiServer.CertDir = filepath.Join(opts.WorkDir, "run", "apiserver")
	apiServer.Path = filepath.Join(assets, "kube-apiserver")
	// envtest turns the ServiceAccount admission plugin off, since it runs no controllers;
	// this stack does, and pods need the token volume the plugin adds.
	apiServer.Configure().Disable("disable-admission-plugins")
	if _, err := s.env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	admin, err := s.env.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the admin user: %w", err)
	}
	s.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("rendering the kubeconfig: %w", err)
	}
	s.KubeconfigPath = filepath.Join(opts.WorkDir, "kubeconfig")
	if err := os.WriteFile(s.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}

	if err := s.installIssuerClusterRole(ctx); err != nil {
		return nil, err
	}

	opts.progress("starting kube-controller-manager and kube-scheduler")
	if err := s.startControllers(ctx); err != nil {
		return nil, err
	}

	opts.progress("starting the operator (%s %s)", s.ManagerPath, strings.Join(s.operatorSettings(), " "))
	if err := s.startManager(ctx); err != nil {
		return nil, err
	}

	opts.progress("starting the local kubelet (pods under %s)", filepath.Join(opts.WorkDir, "run"))
	if err := s.startRunner(redisPath); err != nil {
		return nil, err
	}
	return s, nil
}

// goBuild builds the main packages into the directory outDir.
func goBuild(ctx context.Context, root, outDir string, pkgs ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", outDir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, msg)
	}
	return nil
}

// startManager runs the operator binary against the local API server and waits until its
// readiness probe answers.
func (s *Stack) startManager(ctx context.Context) error {
	probePort, err := freePort()
	if err != nil {
		return err
	}
	s.ManagerLog = filepath.Join(s.opts.WorkDir, "logs", "manager.log")
	logFile, err := os.Create(s.ManagerLog)
	if err != nil {
		return fmt.Errorf("creating the operator log: %w", err)
	}
	probeAddr := fmt.Sprintf("127.0.0.1:%d", probePort)
	args := append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=" + probeAddr}, s.operatorSettings()...)
	cmd := exec.Command(s.ManagerPath, args...)
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
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.managerDone:
			s.managerDone <- err
			return fmt.Errorf("the operator exited at start (%w): see %s", err, s.ManagerLog)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := client.Get("http://" + probeAddr + "/readyz")
		if err == nil {
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

// operatorSettings are the operator's flags the stack's options set: its image and, unless
// left at the default, the minimum publish time of a next key.
func (s *Stack) operatorSettings() []string {
	args := []string{"--authserver-image=" + s.opts.OperatorImage}
	if s.opts.MinKeyPublishTime != 0 {
		args = append(args, "--min-key-publish-time="+s.opts.MinKeyPublishTime.String())
	}
	return args
}

func (s *Stack) startRunner(redisPath string) error {
	s.RunnerLog = filepath.Join(s.opts.WorkDir, "logs", "localkubelet.log")
	f, err := os.Create(s.RunnerLog)
	if err != nil {
		return fmt.Errorf("creating the local kubelet log: %w", err)
	}
	s.runnerLog = f
	nodeConfig, err := s.kubeletConfig()
	if err != nil {
		return err
	}
	r, err := localkubelet.New(localkubelet.Config{
		RESTConfig:     nodeConfig,
		KubeletVersion: KubernetesVersion,
		WorkDir:        filepath.Join(s.opts.WorkDir, "run"),
		NodeName:       NodeName,
		Images:         localkubelet.DefaultImages(s.opts.OperatorImage, s.AuthServerPath, redisPath),
		Logger:         slog.New(slog.NewTextHandler(f, nil)),
		ProcessOutput:  s.opts.ProcessOutput,
	})
	if err != nil {
		return err
	}
	s.Runner = r
	ctx, cancel := context.WithCancel(context.Background())
	s.runnerStop = cancel
	s.runnerDone = make(chan error, 1)
	go func() { s.runnerDone <- r.Run(ctx) }()
	select {
	case <-r.Synced():
		return nil
	case err := <-s.runnerDone:
		s.runnerDone <- err
		return fmt.Errorf("the local kubelet stopped at start: %w", err)
	case <-time.After(60 * time.Second):
		return errors.New("the local kubelet did not sync within 60s")
	}
}

// kubeletConfig is the local kubelet's identity: an administrator, since it watches every
// Secret and ConfigMap where a kubelet (under the Node authorizer) reads only those of its
// pods.
func (s *Stack) kubeletConfig() (*rest.Config, error) {
	u, err := s.env.AddUser(envtest.User{Name: "system:node:" + NodeName, Groups: []string{"system:nodes", "system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the local kubelet's user: %w", err)
	}
	return u.Config(), nil
}

// LogsDir holds the logs of the operator, the local kubelet, kube-controller-manager and
// kube-scheduler.
func (s *Stack) LogsDir() string { return filepath.Join(s.opts.WorkDir, "logs") }

// PodsDir is where the local kubelet keeps each pod's directory and container logs.
func (s *Stack) PodsDir() string { return filepath.Join(s.opts.WorkDir, "run", "pods") }

// ManagerRunning reports whether the operator process is still running.
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

// Stop stops the local kubelet (and every process it runs), the operator and the control
// plane, and removes the kubelet's pods directory and the kubeconfig. Logs and binaries
// stay in the work directory.
func (s *Stack) Stop() error {
	var errs []error
	if s.runnerStop != nil {
		s.opts.progress("stopping the local kubelet and its pods")
		s.runnerStop()
		select {
		case err := <-s.runnerDone:
			if err != nil {
				errs = append(errs, err)
			}
		case <-time.After(60 * time.Second):
			errs = append(errs, errors.New("the local kubelet did not stop within 60s"))
		}
		s.runnerStop = nil
	}
	if s.runnerLog != nil {
		s.runnerLog.Close()
		s.runnerLog = nil
	}
	if s.manager != nil {
		s.opts.progress("stopping the operator")
		if err := stopProcess(s.manager, s.managerDone, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
		s.manager = nil
	}
	if len(s.controllers) > 0 {
		s.opts.progress("stopping kube-scheduler and kube-controller-manager")
		if err := s.stopControllers(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.env != nil {
		s.opts.progress("stopping kube-apiserver and etcd")
		if err := s.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
		}
		s.env = nil
	}
	if s.opts.WorkDir != "" {
		if err := os.RemoveAll(filepath.Join(s.opts.WorkDir, "run")); err != nil {
			errs = append(errs, err)
		}
		if s.KubeconfigPath != "" {
			if err := os.Remove(s.KubeconfigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// stopProcess sends SIGTERM to a process group and SIGKILL after grace.
func stopProcess(cmd *exec.Cmd, done chan error, grace time.Duration) error {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return fmt.Errorf("process %d did not stop within %s and was killed", cmd.Process.Pid, grace)
}

// IssueToken mints a token with `authserver token issue` from a keys directory laid out
// as the mounted signing-key Secret.
func (s *Stack) IssueToken(ctx context.Context, keysDir string, ttl time.Duration) (string, error) {
	out, err := exec.CommandContext(ctx, s.AuthServerPath, "token", "issue", "--keys-dir", keysDir, "--ttl", ttl.String()).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("authserver token issue: %w: %s", err, exitErr.Stderr)
		}
		return "", fmt.Errorf("authserver token issue: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
