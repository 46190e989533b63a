package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/test/localkubelet"
)

// Names of the objects the operator makes for an AuthService, and the paths it mounts.
const (
	serverContainer = "authserver"
	keysMountPath   = "/etc/authserver/keys"
	serverHTTPPort  = 8080
)

// Client returns a client for the local API server that knows the AuthService API.
func (s *Stack) Client() (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(s.Config, client.Options{Scheme: scheme})
}

// ReadyReport is a short account of why an AuthService is or is not Ready.
func ReadyReport(as *authv1alpha1.AuthService) (bool, string) {
	c := meta.FindStatusCondition(as.Status.Conditions, authv1alpha1.ReadyCondition)
	if c == nil {
		return false, "no Ready condition yet"
	}
	if c.ObservedGeneration != as.Generation {
		return false, fmt.Sprintf("Ready is for generation %d, the object is at %d", c.ObservedGeneration, as.Generation)
	}
	return c.Status == "True", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// WaitReady waits until the AuthService is Ready, reporting each new reason it gives.
func (s *Stack) WaitReady(ctx context.Context, key types.NamespacedName, timeout time.Duration, report func(string)) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		var as authv1alpha1.AuthService
		err := c.Get(ctx, key, &as)
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			var ready bool
			ready, msg = ReadyReport(&as)
			if ready {
				return nil
			}
		}
		if msg != last && report != nil {
			report(msg)
		}
		last = msg
		select {
		case <-ctx.Done():
			return fmt.Errorf("AuthService %s not Ready within %s: %s", key, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
		if !s.ManagerRunning() {
			return fmt.Errorf("the operator exited: see %s", s.ManagerLog)
		}
	}
}

// ServerURL is the local URL that stands for the AuthService's auth-server Service.
func (s *Stack) ServerURL(ctx context.Context, key types.NamespacedName) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	var as authv1alpha1.AuthService
	if err := c.Get(ctx, key, &as); err != nil {
		return "", err
	}
	addr, ok := s.Runner.ServiceAddr(key.Namespace, key.Name+"-authserver", as.Spec.Server.Port)
	if !ok {
		return "", fmt.Errorf("no local address for Service %s/%s-authserver port %d", key.Namespace, key.Name, as.Spec.Server.Port)
	}
	return "http://" + addr, nil
}

// IssuerURL is the local URL that stands for status.issuerURL, the AuthService's issuer
// Service.
func (s *Stack) IssuerURL(ctx context.Context, key types.NamespacedName) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	var as authv1alpha1.AuthService
	if err := c.Get(ctx, key, &as); err != nil {
		return "", err
	}
	if as.Status.IssuerURL == "" {
		return "", fmt.Errorf("AuthService %s has no status.issuerURL yet", key)
	}
	return s.LocalURL(as.Status.IssuerURL)
}

// LocalURL maps an in-cluster Service URL (http://NAME.NS.svc[:PORT][/path], as the
// operator writes to the status) to the local address the local kubelet serves it on.
func (s *Stack) LocalURL(inCluster string) (string, error) {
	u, err := url.Parse(inCluster)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", inCluster, err)
	}
	name, ns, ok := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(u.Hostname(), ".cluster.local"), ".svc"), ".")
	if !ok || u.Scheme != "http" {
		return "", fmt.Errorf("%q is not an http://NAME.NS.svc URL of a Service", inCluster)
	}
	port := int32(80)
	if p := u.Port(); p != "" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return "", fmt.Errorf("port of %q: %w", inCluster, err)
		}
		port = int32(n)
	}
	addr, ok := s.Runner.ServiceAddr(ns, name, port)
	if !ok {
		return "", fmt.Errorf("no local address for Service %s/%s port %d", ns, name, port)
	}
	u.Host = addr
	return strings.TrimSuffix(u.String(), "/"), nil
}

// ServerPod is a running auth-server pod of an AuthService, as the local kubelet runs it.
type ServerPod struct {
	Name string
	// URL reaches this pod alone.
	URL string
	// KeysDir is where the pod's keys volume is materialised: the public projection
	// (ConfigMap NAME-public-keys) for a verifier, the signing-key Secret for an issuer.
	KeysDir string
	PID     int
}

// ServerPods lists the ready verifier pods (Deployment NAME-authserver) of an AuthService.
func (s *Stack) ServerPods(key types.NamespacedName) []ServerPod {
	return s.readyPods(key, "authserver")
}

// IssuerPods lists the ready issuer pods (Deployment NAME-issuer) of an AuthService; their
// KeysDir holds the private keys.
func (s *Stack) IssuerPods(key types.NamespacedName) []ServerPod {
	return s.readyPods(key, "authserver-issuer")
}

// readyPods lists the ready pods of one kind (app.kubernetes.io/name) of an AuthService.
func (s *Stack) readyPods(key types.NamespacedName, kind string) []ServerPod {
	var out []ServerPod
	for _, p := range s.Runner.Pods() {
		if p.Namespace != key.Namespace || !IsComponentOf(p, key.Name, kind) || !p.Ready {
			continue
		}
		for _, c := range p.Containers {
			if c.Name != serverContainer {
				continue
			}
			out = append(out, ServerPod{Name: p.Name, URL: "http://" + c.Ports[serverHTTPPort], KeysDir: c.Mounts[keysMountPath], PID: c.PID})
		}
	}
	return out
}

// IsComponentOf reports whether a local pod is one of the AuthService's pods of the given
// kind ("authserver" for the verifier, "authserver-issuer", "redis"), by the operator's app.kubernetes.io labels.
func IsComponentOf(p localkubelet.PodInfo, authService, name string) bool {
	return p.Labels["app.kubernetes.io/instance"] == authService && p.Labels["app.kubernetes.io/name"] == name
}

// SigningKeysDir returns the materialised signing-key Secret of a ready issuer pod: the
// only pods that mount private keys.
func (s *Stack) SigningKeysDir(key types.NamespacedName) (string, error) {
	pods := s.IssuerPods(key)
	if len(pods) == 0 || pods[0].KeysDir == "" {
		return "", errors.New("no ready issuer pod with a mounted signing-key Secret")
	}
	return pods[0].KeysDir, nil
}
