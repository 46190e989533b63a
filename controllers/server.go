package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/serverenv"
)

// reconcileServer runs the verifier: its Deployment, its Service and the optional
// PodDisruptionBudget.
func (r *AuthServiceReconciler) reconcileServer(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	if s.redis == nil || !s.tlsUsable() {
		return reconcile.Result{}, nil
	}
	as.Status.ServerURL = serverURL(as)
	if err := r.reconcileVerifierIdentity(ctx, as); err != nil {
		return reconcile.Result{}, err
	}
	if s.image == "" {
		return reconcile.Result{}, nil
	}
	deployment := serverDeployment(as, *s.redis, s.image, r.minPublishTime(as))
	if err := r.apply(ctx, as, deployment, serverService(as)); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.reconcilePodDisruptionBudget(ctx, as, as.ServerName(), objects.AppVerifier, componentServer); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(deployment), deployment); err != nil {
		return reconcile.Result{}, fmt.Errorf("reading Deployment %s: %w", deployment.Name, err)
	}
	s.server = deployment
	return reconcile.Result{}, nil
}

// serverImage is the auth-server image of both roles: the spec's, else the operator's default.
func (r *AuthServiceReconciler) serverImage(as *authv1alpha1.AuthService) string {
	if as.Spec.Server.Image != "" {
		return as.Spec.Server.Image
	}
	return r.DefaultServerImage
}

// serverEnv is the verifier's configuration, as the AUTHSERVER_* variables of
// docs/authserver-flags.md: the JWKS max-age that minPublishTime needs (none when it is the
// server's default, so running pods do not roll), the issuer's URL for the discovery document
// and, with spec.introspection.clients, who may introspect and the audience their tokens carry.
func serverEnv(as *authv1alpha1.AuthService, redis redisConnection, minPublishTime time.Duration) []corev1.EnvVar {
	env := authserverEnv(as, redis, serverenv.RoleVerifier)
	if maxAge := keylifecycle.JWKSMaxAge(minPublishTime); maxAge != keylifecycle.DefaultJWKSMaxAge {
		env = append(env, corev1.EnvVar{Name: serverenv.JWKSMaxAge, Value: maxAge.String()})
	}
	env = append(env, corev1.EnvVar{Name: serverenv.TokenServiceURL, Value: issuerURL(as)})
	if clients := introspectionClients(as); clients != "" {
		env = append(env,
			corev1.EnvVar{Name: serverenv.IntrospectionClients, Value: clients},
			corev1.EnvVar{Name: serverenv.ClientAudience, Value: tokenIssuer(as)})
	}
	return env
}

// introspectionClients is spec.introspection.clients as --introspection-clients takes them.
func introspectionClients(as *authv1alpha1.AuthService) string {
	clients := make([]string, 0, len(as.Spec.Introspection.Clients))
	for _, c := range as.Spec.Introspection.Clients {
		clients = append(clients, c.Namespace+"/"+c.ServiceAccountName)
	}
	return strings.Join(clients, ",")
}

// serverDeployment builds the verifier Deployment. It mounts the public projection of the
// keys only, never the signing-key Secret. Its pod template depends on the spec and the
// Redis password's checksum only: a key rotation changes the mounted Secret, which the
// server reloads, and must not restart a pod.
func serverDeployment(as *authv1alpha1.AuthService, redis redisConnection, image string, minPublishTime time.Duration) *appsv1.Deployment {
	keys := corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  as.PublicKeysSecretName(),
		DefaultMode: ptr.To[int32](0o444),
	}}
	w := authserverWorkload{
		name: as.ServerName(), app: objects.AppVerifier, component: componentServer,
		replicas: as.Spec.Server.Replicas, keys: keys, env: serverEnv(as, redis, minPublishTime),
	}
	// Only a verifier that serves introspection reviews tokens; otherwise it runs with no
	// API credentials at all.
	if len(as.Spec.Introspection.Clients) > 0 {
		w.serviceAccount = as.ServerName()
	}
	d := authserverDeployment(as, w, redis, image)
	// The user's spread constraints select the verifier's pods (their doc says so).
	d.Spec.Template.Spec.TopologySpreadConstraints = as.Spec.Server.TopologySpreadConstraints
	return d
}

func serverService(as *authv1alpha1.AuthService) *corev1.Service {
	scheme, port := servicePort(as, withDefaults(&as.Spec).Server.Port)
	return objects.ClusterService(as, as.ServerName(), objects.AppVerifier, componentServer, scheme, port)
}

// reconcilePodDisruptionBudget applies or deletes the PodDisruptionBudget named name of one
// workload (the verifier or the issuer), as spec.server.podDisruptionBudget says.
func (r *AuthServiceReconciler) reconcilePodDisruptionBudget(ctx context.Context, as *authv1alpha1.AuthService, name, app, component string) error {
	if as.Spec.Server.PodDisruptionBudget.Enabled {
		return r.apply(ctx, as, podDisruptionBudget(as, name, app, component))
	}
	return r.deleteOwned(ctx, as, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func podDisruptionBudget(as *authv1alpha1.AuthService, name, app, component string) *policyv1.PodDisruptionBudget {
	maxUnavailable := withDefaults(&as.Spec).Server.PodDisruptionBudget.MaxUnavailable
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: as.Namespace, Labels: objects.Labels(as, app, component)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: maxUnavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: objects.Selector(as, app)},
		},
	}
}
