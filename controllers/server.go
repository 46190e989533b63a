package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

// reconcileServer runs the auth-server Deployment, its Service and the optional
// PodDisruptionBudget.
func (r *AuthServiceReconciler) reconcileServer(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	as.Status.ServerURL = serverURL(as)
	if s.redis == nil {
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, "WaitingForRedis",
			"The auth server is not rolled out until its Redis settings are complete: see the RedisReady condition")
		return reconcile.Result{}, nil
	}
	image := as.Spec.Server.Image
	if image == "" {
		image = r.DefaultServerImage
	}
	if image == "" {
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, "NoImage",
			"No auth-server image: set spec.server.image, or start the operator with --authserver-image")
		return reconcile.Result{}, nil
	}
	deployment := serverDeployment(as, *s.redis, image, jwksMaxAge(r.MinKeyPublishTime))
	for _, obj := range []client.Object{deployment, serverService(as)} {
		if err := r.apply(ctx, as, obj); err != nil {
			return reconcile.Result{}, err
		}
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ServerName(as)}}
	if as.Spec.Server.PodDisruptionBudget.Enabled {
		if err := r.apply(ctx, as, serverPodDisruptionBudget(as)); err != nil {
			return reconcile.Result{}, err
		}
	} else if err := r.deleteOwned(ctx, as, pdb); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(deployment), deployment); err != nil {
		return reconcile.Result{}, fmt.Errorf("reading Deployment %s: %w", deployment.Name, err)
	}
	setServerReady(as, deployment)
	return reconcile.Result{}, nil
}

// jwksMaxAge is the --jwks-max-age the auth server needs so that a client's cached JWKS
// expires, together with the kubelet's Secret propagation, before a next key may sign. With
// the default minimum publish time the server's own default (1m) fits and zero is returned,
// so no variable is set and running pods do not roll. A shorter publish time gets a fifth of
// it (below the server's default), in whole seconds, at least one.
func jwksMaxAge(minPublishTime time.Duration) time.Duration {
	if minPublishTime <= 0 || minPublishTime >= keylifecycle.DefaultMinPublishTime {
		return 0
	}
	return max((minPublishTime / 5).Truncate(time.Second), time.Second)
}

// serverEnv is the auth server's configuration, as the AUTHSERVER_* variables of
// docs/authserver-flags.md. The Redis password travels as a mounted file, never as a value.
// A zero jwksMaxAge leaves the server's default.
func serverEnv(as *authv1alpha1.AuthService, redis redisConnection, jwksMaxAge time.Duration) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "AUTHSERVER_LISTEN", Value: ":" + strconv.Itoa(serverContainerPort)},
		{Name: "AUTHSERVER_ADMIN_LISTEN", Value: ":" + strconv.Itoa(serverAdminPort)},
		{Name: "AUTHSERVER_KEYS_DIR", Value: keysMountPath},
		{Name: "AUTHSERVER_REDIS_ADDRS", Value: strings.Join(redis.addresses, ",")},
	}
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("AUTHSERVER_REDIS_KEY_PREFIX", redisKeyPrefix(as))
	add("AUTHSERVER_REDIS_MASTER_NAME", redis.masterName)
	add("AUTHSERVER_REDIS_USERNAME", redis.username)
	if redis.password != nil {
		add("AUTHSERVER_REDIS_PASSWORD_FILE", redisPasswordFile)
	}
	if redis.db != 0 {
		add("AUTHSERVER_REDIS_DB", strconv.Itoa(int(redis.db)))
	}
	if tls := redis.tls; tls != nil && tls.Enabled {
		add("AUTHSERVER_REDIS_TLS", "true")
		if tls.CASecretRef != nil {
			add("AUTHSERVER_REDIS_TLS_CA_FILE", redisTLSDir+"/ca.crt")
		}
		add("AUTHSERVER_REDIS_TLS_SERVER_NAME", tls.ServerName)
	}
	add("AUTHSERVER_LEEWAY", as.Spec.Tokens.Leeway.Duration.String())
	add("AUTHSERVER_CORS_ORIGINS", strings.Join(as.Spec.Server.CORSOrigins, ","))
	add("AUTHSERVER_COMPAT_STATUS_CODES", strconv.FormatBool(as.Spec.Server.CompatStatusCodes))
	add("AUTHSERVER_LOG_LEVEL", as.Spec.Server.LogLevel)
	if jwksMaxAge > 0 {
		add("AUTHSERVER_JWKS_MAX_AGE", jwksMaxAge.String())
	}
	return env
}

// serverDeployment builds the auth-server Deployment. Its pod template depends on the spec
// and the Redis password's checksum only: a key rotation changes the mounted Secret, which
// the server reloads, and must not restart a pod.
func serverDeployment(as *authv1alpha1.AuthService, redis redisConnection, image string, jwksMaxAge time.Duration) *appsv1.Deployment {
	spec := as.Spec.Server
	volumes := []corev1.Volume{{
		Name: "signing-keys",
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  SigningKeysSecretName(as),
			DefaultMode: ptr.To[int32](0o440),
		}},
	}}
	mounts := []corev1.VolumeMount{{Name: "signing-keys", MountPath: keysMountPath, ReadOnly: true}}
	if ref := redis.password; ref != nil {
		volumes = append(volumes, corev1.Volume{
			Name: "redis-password",
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  ref.Name,
				Items:       []corev1.KeyToPath{{Key: ref.Key, Path: "password"}},
				DefaultMode: ptr.To[int32](0o440),
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: "redis-password", MountPath: redisPasswordDir, ReadOnly: true})
	}
	if tls := redis.tls; tls != nil && tls.Enabled && tls.CASecretRef != nil {
		volumes = append(volumes, corev1.Volume{
			Name: "redis-tls-ca",
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  tls.CASecretRef.Name,
				Items:       []corev1.KeyToPath{{Key: tls.CASecretRef.Key, Path: "ca.crt"}},
				DefaultMode: ptr.To[int32](0o444),
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: "redis-tls-ca", MountPath: redisTLSDir, ReadOnly: true})
	}
	annotations := map[string]string{}
	if redis.passwordChecksum != "" {
		annotations[RedisPasswordChecksumAnnotation] = redis.passwordChecksum
	}
	if redis.caChecksum != "" {
		annotations[RedisCAChecksumAnnotation] = redis.caChecksum
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	maxSurge := intstr.FromInt32(1)
	maxUnavailable := intstr.FromInt32(0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ServerName(as), Namespace: as.Namespace, Labels: labels(as, "authserver", componentServer)},
		Spec: appsv1.DeploymentSpec{
			Replicas: spec.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector(as, "authserver")},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(as, "authserver", componentServer), Annotations: annotations},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              restrictedPodSecurityContext(serverUID),
					NodeSelector:                 spec.NodeSelector,
					Tolerations:                  spec.Tolerations,
					Affinity:                     spec.Affinity,
					TopologySpreadConstraints:    spec.TopologySpreadConstraints,
					PriorityClassName:            spec.PriorityClassName,
					ImagePullSecrets:             spec.ImagePullSecrets,
					Containers: []corev1.Container{{
						Name:    "authserver",
						Image:   image,
						Command: []string{"/authserver", "serve"},
						Env:     serverEnv(as, redis, jwksMaxAge),
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: serverContainerPort, Protocol: corev1.ProtocolTCP},
							{Name: serverAdminPortName, ContainerPort: serverAdminPort, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts:    mounts,
						Resources:       spec.Resources,
						SecurityContext: restrictedContainerSecurityContext(),
						LivenessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString(serverAdminPortName)}},
							PeriodSeconds: 10, FailureThreshold: 3,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString(serverAdminPortName)}},
							PeriodSeconds: 5, FailureThreshold: 2,
						},
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

func serverService(as *authv1alpha1.AuthService) *corev1.Service {
	port := as.Spec.Server.Port
	if port == 0 {
		port = 80
	}
	return clusterService(as, ServerName(as), "authserver", componentServer, "http", port)
}

func serverPodDisruptionBudget(as *authv1alpha1.AuthService) *policyv1.PodDisruptionBudget {
	maxUnavailable := as.Spec.Server.PodDisruptionBudget.MaxUnavailable
	if maxUnavailable == nil {
		one := intstr.FromInt32(1)
		maxUnavailable = &one
	}
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: ServerName(as), Namespace: as.Namespace, Labels: labels(as, "authserver", componentServer)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: maxUnavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: selector(as, "authserver")},
		},
	}
}

// setServerReady judges the Deployment the way `kubectl rollout status` does.
func setServerReady(as *authv1alpha1.AuthService, d *appsv1.Deployment) {
	want := ptr.Deref(d.Spec.Replicas, 1)
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonProgressing,
			fmt.Sprintf("Deployment %s has not yet observed its latest spec", d.Name))
	case st.UpdatedReplicas < want:
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonProgressing,
			fmt.Sprintf("Rolling out: %d of %d auth-server replicas updated", st.UpdatedReplicas, want))
	case st.Replicas > st.UpdatedReplicas:
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonProgressing,
			fmt.Sprintf("Rolling out: %d old auth-server replicas pending termination", st.Replicas-st.UpdatedReplicas))
	case st.AvailableReplicas < want:
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonUnavailable,
			fmt.Sprintf("%d of %d auth-server replicas available", st.AvailableReplicas, want))
	default:
		setCondition(as, authv1alpha1.ServerReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonReady,
			fmt.Sprintf("%d of %d auth-server replicas available at %s", st.AvailableReplicas, want, serverURL(as)))
	}
}
