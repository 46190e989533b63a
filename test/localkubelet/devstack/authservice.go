package devstack

import (
	"context"
	"errors"
	"fmt"
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

// ServerPod is a running auth-server pod of an AuthService, as the local kubelet runs it.
type ServerPod struct {
	Name string
	// URL reaches this pod alone.
	URL string
	// KeysDir is where the pod's signing-key Secret is materialised.
	KeysDir string
	PID     int
}

// ServerPods lists the ready auth-server pods of an AuthService.
func (s *Stack) ServerPods(key types.NamespacedName) []ServerPod {
	var out []ServerPod
	for _, p := range s.Runner.Pods() {
		if p.Namespace != key.Namespace || !IsComponentOf(p, key.Name, "authserver") || !p.Ready {
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
// kind ("authserver", "redis"), by the operator's app.kubernetes.io labels.
func IsComponentOf(p localkubelet.PodInfo, authService, name string) bool {
	return p.Labels["app.kubernetes.io/instance"] == authService && p.Labels["app.kubernetes.io/name"] == name
}

// KeysDir returns the materialised signing-key directory of a ready auth-server pod.
func (s *Stack) KeysDir(key types.NamespacedName) (string, error) {
	pods := s.ServerPods(key)
	if len(pods) == 0 || pods[0].KeysDir == "" {
		return "", errors.New("no ready auth-server pod with a mounted keys directory")
	}
	return pods[0].KeysDir, nil
}
