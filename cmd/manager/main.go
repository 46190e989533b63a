package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/version"
)

// minKeyPublishTimeFloor is the shortest --min-key-publish-time the manager accepts.
const minKeyPublishTimeFloor = time.Second

// options are the manager's command-line settings.
type options struct {
	metricsAddr             string
	secureMetrics           bool
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	authserverImage         string
	maxConcurrentReconciles int
	enableHTTP2             bool
	minKeyPublishTime       time.Duration
	requireSecretUseLabel   bool
}

func main() {
	var o options
	bindFlags(flag.CommandLine, &o)
	printVersion := flag.Bool("version", false, "Print the version, the commit and the Go version, and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *printVersion {
		fmt.Println("manager " + version.Get().String())
		return
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), o); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager stopped")
		os.Exit(1)
	}
}

// bindFlags registers the manager's flags, with their defaults, on fs.
func bindFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; \"0\" disables it.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so only one of several manager replicas reconciles.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to the manager's own namespace.")
	fs.StringVar(&o.authserverImage, "authserver-image", os.Getenv("AUTHSERVER_IMAGE"), "Image of the auth server for AuthServices that name none (env AUTHSERVER_IMAGE): the image the operator itself runs.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "AuthServices reconciled in parallel.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Serve metrics over HTTP/2 too (off by default against HTTP/2 rapid-reset attacks).")
	fs.BoolVar(&o.requireSecretUseLabel, "require-secret-use-label", false, "Use a Secret named in spec.redis.external (password, CA bundle) only when it carries the label use.auth.hiringo.tech/<AuthService name>=true, so that creating an AuthService does not grant the use of every Secret of its namespace.")
	fs.DurationVar(&o.minKeyPublishTime, "min-key-publish-time", keylifecycle.DefaultMinPublishTime, "How long a next signing key is published before it may sign. It must exceed the kubelet's Secret propagation (sync period + cache TTL); lower it only where propagation is known to be fast. At least 1s.")
}

// validate reports settings the manager must not start with.
func (o options) validate() error {
	if o.minKeyPublishTime < minKeyPublishTimeFloor {
		return fmt.Errorf("--min-key-publish-time must be at least %s, got %s", minKeyPublishTimeFloor, o.minKeyPublishTime)
	}
	return nil
}

// run starts the manager on cfg and blocks until ctx ends or the manager fails.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	setupLog := ctrl.Log.WithName("setup")
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "auth-operator.auth.hiringo.tech",
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if o.authserverImage == "" {
		setupLog.Info("no --authserver-image: AuthServices must set spec.server.image")
	}
	reconciler := &controllers.AuthServiceReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Scheme:             mgr.GetScheme(),
		Recorder:           mgr.GetEventRecorder("auth-operator"),
		Clock:              clock.RealClock{},
		DefaultServerImage: o.authserverImage,
		MinKeyPublishTime:  o.minKeyPublishTime,

		RequireSecretUseLabel: o.requireSecretUseLabel,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: o.maxConcurrentReconciles}); err != nil {
		return fmt.Errorf("setting up the AuthService controller: %w", err)
	}
	// A second run in one process (the tests) finds the metric registered already.
	if err := metrics.Registry.Register(version.Collector("auth_operator")); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return fmt.Errorf("registering the build_info metric: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	info := version.Get()
	setupLog.Info("starting manager", "version", info.Version, "commit", info.Commit, "goVersion", info.GoVersion, "authserverImage", o.authserverImage, "leaderElect", o.leaderElect, "minKeyPublishTime", o.minKeyPublishTime, "requireSecretUseLabel", o.requireSecretUseLabel)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}
