package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/tracing"
)

// startTracing traces the Redis client with the configured tracer provider or, when
// an OTLP endpoint is configured, a new one exporting there, flushed as the server
// closes; otherwise nothing is wrapped.
func (s *Server) startTracing(ctx context.Context, client goredis.UniversalClient) error {
	if s.cfg.TracerProvider == nil {
		if !tracing.Enabled(s.cfg.OTLPEndpoint, os.Getenv) {
			return nil
		}
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { s.log.Warn("exporting traces failed", "err", err) }))
		role := httpapi.RoleVerifier
		if s.issuer {
			role = httpapi.RoleIssuer
		}
		tp, err := tracing.NewProvider(ctx, s.cfg.OTLPEndpoint, string(role))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, func() {
			flushCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer done()
			if err := tp.Shutdown(flushCtx); err != nil {
				s.log.Warn("flushing traces failed", "err", err)
			}
		})
		s.cfg.TracerProvider = tp
		s.log.Info("tracing on: exporting spans over OTLP/HTTP")
	}
	return tracing.InstrumentRedis(client, s.cfg.TracerProvider)
}

// redisModeWait bounds how long the server waits at start for one Redis address to
// say whether it is a Cluster node; then it exits, and Kubernetes restarts it.
const redisModeWait = 30 * time.Second

// resolveRedisMode asks one Redis address in auto mode whether it is a Cluster node,
// retrying while it does not answer.
func resolveRedisMode(ctx context.Context, rc blacklist.ClientConfig, log *slog.Logger) (blacklist.Mode, error) {
	ctx, cancel := context.WithTimeout(ctx, redisModeWait)
	defer cancel()
	for {
		attempt, done := context.WithTimeout(ctx, 2*time.Second)
		mode, err := blacklist.ResolveMode(attempt, rc)
		done()
		if err == nil {
			if rc.Mode == blacklist.ModeAuto && len(rc.Addrs) == 1 && rc.MasterName == "" {
				log.Info("Redis mode inferred from the node", "mode", string(mode))
			}
			return mode, nil
		}
		if !errors.Is(err, blacklist.ErrUnavailable) {
			return "", err
		}
		log.Warn("Redis does not answer; retrying to learn its mode", "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("--redis-mode auto: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// CheckReplicaAcks refuses replica acknowledgement on a Cluster, once the mode is
// known: a WAIT could reach another shard than the write.
func CheckReplicaAcks(rc blacklist.ClientConfig, acks int) error {
	if mode, ok := rc.Inferred(); acks > 0 && ok && mode == blacklist.ModeCluster {
		return errors.New("--redis-min-replicas-acked needs a single Redis or Sentinel, not a Cluster: set min-replicas-to-write on the Cluster's primaries instead")
	}
	return nil
}

// reviewClients are the Kubernetes clients of a server that authenticates callers: one for
// the watches, and one of its own for TokenReviews and the cluster's issuer discovery.
type reviewClients struct {
	kube, reviews kubernetes.Interface
}

// newReviewClients configures the clients from kubeconfig when set, else from the pod's
// in-cluster configuration.
func newReviewClients(kubeconfig string) (*reviewClients, error) {
	var restCfg *rest.Config
	var err error
	if kubeconfig == "" {
		restCfg, err = rest.InClusterConfig()
	} else {
		restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("configuring the Kubernetes client (--kubeconfig): %w", err)
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	reviewCfg := rest.CopyConfig(restCfg)
	reviewCfg.QPS, reviewCfg.Burst = clientauth.DefaultReviewQPS, clientauth.DefaultReviewBurst
	reviews, err := kubernetes.NewForConfig(reviewCfg)
	if err != nil {
		return nil, err
	}
	return &reviewClients{kube: kube, reviews: reviews}, nil
}

// authenticator authenticates the listed clients by their ServiceAccount tokens for audience.
func (r *reviewClients) authenticator(audience string, clients []clientauth.ServiceAccount) *clientauth.Authenticator {
	return clientauth.New(clientauth.Config{
		Reviews: r.reviews.AuthenticationV1().TokenReviews(), Audience: audience, Clients: clients,
		Keys: &clientauth.ClusterKeys{Client: r.reviews.Discovery().RESTClient()},
	})
}
