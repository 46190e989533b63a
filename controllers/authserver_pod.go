package controllers

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// The values of AUTHSERVER_ROLE.
const (
	roleVerifier = "verifier"
	roleIssuer   = "issuer"
)

// authserverWorkload is what tells the verifier's and the issuer's Deployments apart.
type authserverWorkload struct {
	name, app, component string
	replicas             *int32
	// keys is mounted at keysMountPath: the public projection for the verifier, the
	// signing-key Secret for the issuer.
	keys corev1.VolumeSource
	env  []corev1.EnvVar
	// serviceAccount, when set, runs the pods as it with its token mounted; otherwise the
	// pods mount no token.
	serviceAccount string
}

// authserverEnv is the configuration both roles share, as the AUTHSERVER_* variables of
// docs/authserver-flags.md. The Redis password travels as a mounted file, never as a value.
// Both roles know the token settings: the verifier checks iss and keeps a revoked session
// as long as its refresh token could live.
func authserverEnv(as *authv1alpha1.AuthService, redis redisConnection, role string) []corev1.EnvVar {
	listen := serverContainerPort
	if as.Spec.Server.TLS != nil {
		listen = serverTLSPort
	}
	env := []corev1.EnvVar{
		{Name: "AUTHSERVER_ROLE", Value: role},
		{Name: "AUTHSERVER_LISTEN", Value: ":" + strconv.Itoa(listen)},
		{Name: "AUTHSERVER_ADMIN_LISTEN", Value: ":" + strconv.Itoa(serverAdminPort)},
		{Name: "AUTHSERVER_KEYS_DIR", Value: keysMountPath},
		{Name: "AUTHSERVER_REDIS_ADDRS", Value: strings.Join(redis.addresses, ",")},
	}
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	addDuration := func(name string, d time.Duration) {
		if d > 0 {
			add(name, d.String())
		}
	}
	add("AUTHSERVER_REDIS_KEY_PREFIX", redisKeyPrefix(as))
	add("AUTHSERVER_REDIS_MASTER_NAME", redis.masterName)
	add("AUTHSERVER_REDIS_USERNAME", redis.username)
	if redis.password != nil {
		add("AUTHSERVER_REDIS_PASSWORD_FILE", redisPasswordFile)
	}
	add("AUTHSERVER_REDIS_MODE", redis.mode)
	add("AUTHSERVER_REDIS_SENTINEL_USERNAME", redis.sentinelUsername)
	if redis.sentinelPassword != nil {
		add("AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE", sentinelPasswordFile)
	}
	if redis.minReplicasAcked > 0 {
		add("AUTHSERVER_REDIS_MIN_REPLICAS_ACKED", strconv.Itoa(int(redis.minReplicasAcked)))
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
	addDuration("AUTHSERVER_LEEWAY", as.Spec.Tokens.Leeway.Duration)
	add("AUTHSERVER_CORS_ORIGINS", strings.Join(as.Spec.Server.CORSOrigins, ","))
	add("AUTHSERVER_COMPAT_STATUS_CODES", strconv.FormatBool(as.Spec.Server.CompatStatusCodes))
	add("AUTHSERVER_LOG_LEVEL", as.Spec.Server.LogLevel)
	add("AUTHSERVER_OTLP_ENDPOINT", as.Spec.Server.Tracing.OTLPEndpoint)
	add("AUTHSERVER_ISSUER", tokenIssuer(as))
	audiences := make([]string, 0, len(as.Spec.Tokens.Audiences))
	for _, a := range as.Spec.Tokens.Audiences {
		audiences = append(audiences, string(a))
	}
	add("AUTHSERVER_AUDIENCES", strings.Join(audiences, ","))
	if as.Spec.Tokens.RequireAudience {
		add("AUTHSERVER_REQUIRE_AUDIENCE", "true")
	}
	if as.Spec.Server.TLS != nil {
		add("AUTHSERVER_TLS_CERT_FILE", tlsMountPath+"/"+corev1.TLSCertKey)
		add("AUTHSERVER_TLS_KEY_FILE", tlsMountPath+"/"+corev1.TLSPrivateKeyKey)
	}
	addDuration("AUTHSERVER_ACCESS_LIFETIME", as.Spec.Tokens.MaxLifetime.Duration)
	addDuration("AUTHSERVER_REFRESH_LIFETIME", as.Spec.Tokens.RefreshLifetime.Duration)
	return env
}

// authserverDeployment builds a Deployment of the auth server in one role, with what both
// share: the image, the Redis wiring, the placement of spec.server, the probes and the
// restricted security contexts.
func authserverDeployment(as *authv1alpha1.AuthService, w authserverWorkload, redis redisConnection, image string) *appsv1.Deployment {
	spec := as.Spec.Server
	volumes := []corev1.Volume{{Name: "keys", VolumeSource: w.keys}}
	mounts := []corev1.VolumeMount{{Name: "keys", MountPath: keysMountPath, ReadOnly: true}}
	// mount adds the items of Secret name, read-only at dir, as volume vol.
	mount := func(vol, name, dir string, mode int32, items ...corev1.KeyToPath) {
		volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: name, Items: items, DefaultMode: ptr.To(mode),
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
	}
	if ref := redis.password; ref != nil {
		mount("redis-password", ref.Name, redisPasswordDir, 0o440, corev1.KeyToPath{Key: ref.Key, Path: "password"})
	}
	if ref := redis.sentinelPassword; ref != nil {
		mount("redis-sentinel-password", ref.Name, sentinelPasswordDir, 0o440, corev1.KeyToPath{Key: ref.Key, Path: "password"})
	}
	if t := as.Spec.Server.TLS; t != nil {
		// The serving certificate is mounted, never checksummed into the template: a
		// renewal reaches the running pods through the kubelet, which the server reloads.
		mount("tls", t.SecretName, tlsMountPath, 0o440,
			corev1.KeyToPath{Key: corev1.TLSCertKey, Path: corev1.TLSCertKey}, corev1.KeyToPath{Key: corev1.TLSPrivateKeyKey, Path: corev1.TLSPrivateKeyKey})
	}
	if tls := redis.tls; tls != nil && tls.Enabled && tls.CASecretRef != nil {
		mount("redis-tls-ca", tls.CASecretRef.Name, redisTLSDir, 0o444, corev1.KeyToPath{Key: tls.CASecretRef.Key, Path: "ca.crt"})
	}
	annotations := map[string]string{}
	for k, v := range map[string]string{
		RedisPasswordChecksumAnnotation: redis.passwordChecksum, RedisCAChecksumAnnotation: redis.caChecksum,
		RedisSentinelPasswordChecksumAnnotation: redis.sentinelPasswordChecksum,
	} {
		if v != "" {
			annotations[k] = v
		}
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	apiPort := corev1.ContainerPort{Name: "http", ContainerPort: serverContainerPort, Protocol: corev1.ProtocolTCP}
	if as.Spec.Server.TLS != nil {
		apiPort = corev1.ContainerPort{Name: "https", ContainerPort: serverTLSPort, Protocol: corev1.ProtocolTCP}
	}
	maxSurge := intstr.FromInt32(1)
	maxUnavailable := intstr.FromInt32(0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: as.Namespace, Labels: objects.Labels(as, w.app, w.component)},
		Spec: appsv1.DeploymentSpec{
			Replicas: w.replicas,
			Selector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, w.app)},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: objects.Labels(as, w.app, w.component), Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName: w.serviceAccount,
					// The API server copies serviceAccountName into this deprecated field and
					// back: applying both lets a later apply without them (a verifier whose
					// introspection is turned off) clear both.
					DeprecatedServiceAccount:     w.serviceAccount,
					AutomountServiceAccountToken: ptr.To(w.serviceAccount != ""),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              objects.RestrictedPodSecurityContext(serverUID),
					NodeSelector:                 spec.NodeSelector,
					Tolerations:                  spec.Tolerations,
					Affinity:                     spec.Affinity,
					PriorityClassName:            spec.PriorityClassName,
					ImagePullSecrets:             spec.ImagePullSecrets,
					Containers: []corev1.Container{{
						Name:    "authserver",
						Image:   image,
						Command: []string{"/authserver", "serve"},
						Env:     w.env,
						Ports: []corev1.ContainerPort{
							apiPort,
							{Name: serverAdminPortName, ContainerPort: serverAdminPort, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts:    mounts,
						Resources:       spec.Resources,
						SecurityContext: objects.RestrictedContainerSecurityContext(),
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
