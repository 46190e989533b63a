package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/version"
)

// pollInterval is how often rotate and revoke look at the AuthService while they wait.
const pollInterval = time.Second

// options are the flags every command shares: kubectl's connection flags and the AuthService.
type options struct {
	loading   *clientcmd.ClientConfigLoadingRules
	overrides *clientcmd.ConfigOverrides
	name      string
}

// target is the AuthService a command works on and the client that reaches it.
type target struct {
	client    client.Client
	namespace string
	name      string
}

// fieldManager is the field manager of the plugin's writes.
const fieldManager = "kubectl-authsvc"

func newRootCommand() *cobra.Command {
	o := &options{
		loading:   clientcmd.NewDefaultClientConfigLoadingRules(),
		overrides: &clientcmd.ConfigOverrides{},
	}
	root := &cobra.Command{
		Use:           "kubectl-authsvc",
		Short:         "Operate the AuthServices of the auth-operator: keys, rotation, revocation, user logout",
		Long:          "kubectl authsvc shows an AuthService's keys and readiness, asks the operator for a key rotation and waits for it, revokes a compromised key and ends every session of a user.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// kubectl runs the plugin as kubectl-authsvc; help shows it as users type it.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl authsvc"},
		Version:     version.Get().String(),
	}
	root.SetVersionTemplate("kubectl-authsvc {{.Version}}\n")
	flags := root.PersistentFlags()
	flags.StringVar(&o.loading.ExplicitPath, "kubeconfig", "", "path to the kubeconfig file")
	// kubectl's own connection flags: --context, --namespace/-n, --server, --token, …
	clientcmd.BindOverrideFlags(o.overrides, flags, clientcmd.RecommendedConfigOverrideFlags(""))
	flags.StringVarP(&o.name, "authservice", "a", "", "the AuthService; the only one in the namespace when empty")

	root.AddCommand(newStatusCommand(o), newRotateCommand(o), newRevokeCommand(o), newLogoutUserCommand(o))
	return root
}

// connect builds the client from the kubeconfig and flags and picks the AuthService.
func (o *options) connect(ctx context.Context) (*target, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(o.loading, o.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	// As controller-runtime's GetConfig: no client-side rate limit (whose wait can fail a read
	// just before a deadline); the API server's priority and fairness decides.
	cfg.QPS = -1
	namespace, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	utilruntime.Must(appsv1.AddToScheme(scheme))
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(authenticationv1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connect to the API server: %w", err)
	}
	// The operator's KeyRevoked event names the field manager of a revocation.
	c = client.WithFieldOwner(c, fieldManager)
	t := &target{client: c, namespace: namespace, name: o.name}
	if t.name == "" {
		if t.name, err = onlyAuthService(ctx, c, namespace); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// onlyAuthService returns the name of the one AuthService in namespace, or an error that says
// how to choose when there is none or more than one.
func onlyAuthService(ctx context.Context, c client.Client, namespace string) (string, error) {
	list := &authv1alpha1.AuthServiceList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("list AuthServices in %s: %w", namespace, err)
	}
	switch len(list.Items) {
	case 0:
		return "", fmt.Errorf("no AuthService in namespace %s: choose another with -n", namespace)
	case 1:
		return list.Items[0].Name, nil
	}
	names := make([]string, 0, len(list.Items))
	for _, as := range list.Items {
		names = append(names, as.Name)
	}
	return "", fmt.Errorf("%d AuthServices in namespace %s (%s): choose one with --authservice", len(names), namespace, strings.Join(names, ", "))
}

// get reads the AuthService.
func (t *target) get(ctx context.Context) (*authv1alpha1.AuthService, error) {
	as := &authv1alpha1.AuthService{}
	if err := t.client.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: t.name}, as); err != nil {
		return nil, fmt.Errorf("get AuthService %s/%s: %w", t.namespace, t.name, err)
	}
	return as, nil
}

// errWaitTimedOut is returned by waitFor when the AuthService did not get there in time.
var errWaitTimedOut = errors.New("timed out")

// waitFor reads the AuthService every pollInterval until done says it is there, and returns
// the last one read. When timeout passes first the error is errWaitTimedOut, with the last
// AuthService read (nil if none could be).
func (t *target) waitFor(ctx context.Context, timeout time.Duration, done func(*authv1alpha1.AuthService) bool) (*authv1alpha1.AuthService, error) {
	var last *authv1alpha1.AuthService
	err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		cur, err := t.get(ctx)
		if err != nil {
			// A read cut short by the deadline is the timeout, not a failure of its own.
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, err
		}
		last = cur
		return done(cur), nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return last, errWaitTimedOut
	}
	return last, err
}

// ref names the AuthService in messages.
func (t *target) ref() string { return "AuthService " + t.namespace + "/" + t.name }
