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
	"github.com/hiringo/auth-operator/internal/serverenv"
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
		{Name: serverenv.Role, Value: role},
		{Name: serverenv.Listen, Value: ":" + strconv.Itoa(listen)},
		{Name: serverenv.AdminListen, Value: ":" + strconv.Itoa(serverAdminPort)},
		{Name: serverenv.KeysDir, Value: keysMountPath},
		{Name: serverenv.RedisAddrs, Value: strings.Join(redis.addresses, ",")},
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
	add(serverenv.RedisKeyPrefix, redisKeyPrefix(as))
	add(serverenv.RedisMasterName, redis.masterName)
	add(serverenv.RedisUsername, redis.username)
	if redis.password != nil {
		add(serverenv.RedisPasswordFile, redisPasswordFile)
	}
	add(serverenv.RedisMode, redis.mode)
	add(serverenv.RedisSentinelUsername, redis.sentinelUsername)
	if redis.sentinelPassword != nil {
		add(serverenv.RedisSentinelPasswordFile, sentinelPasswordFile)
	}
	if redis.sessionCapacity > 0 {
		add(serverenv.SessionCapacity, strconv.Itoa(int(redis.sessionCapacity)))
	}
	if redis.minReplicasAcked > 0 {
		add(serverenv.RedisMinReplicasAcked, strconv.Itoa(int(redis.minReplicasAcked)))
	}
	if redis.db != 0 {
		add(serverenv.RedisDB, strconv.Itoa(int(redis.db)))
	}
	if tls := redis.tls; tls != nil && tls.Enabled {
		add(serverenv.RedisTLS, "true")
		if tls.CASecretRef != nil {
			add(serverenv.RedisTLSCAFile, redisTLSDir+"/ca.crt")
		}
		add(serverenv.RedisTLSServerName, tls.ServerName)
	}
	addDuration(serverenv.Leeway, as.Spec.Tokens.Leeway.Duration)
	add(serverenv.CORSOrigins, strings.Join(as.Spec.Server.CORSOrigins, ","))
	add(serverenv.CompatStatusCodes, strconv.FormatBool(as.Spec.Server.CompatStatusCodes))
	add(serverenv.LogLevel, as.Spec.Server.LogLevel)
	add(serverenv.OTLPEndpoint, as.Spec.Server.Tracing.OTLPEndpoint)
	add(serverenv.Issuer, tokenIssuer(as))
	audiences := make([]string, 0, len(as.Spec.Tokens.Audiences))
	for _, a := range as.Spec.Tokens.Audiences {
		audiences = append(audiences, string(a))
	}
	add(serverenv.Audiences, strings.Join(audiences, ","))
	if as.Spec.Tokens.RequireAudience {
		add(serverenv.RequireAudience, "true")
	}
	if as.Spec.Server.TLS != nil {
		add(serverenv.TLSCertFile, tlsMountPath+"/"+corev1.TLSCertKey)
		add(serverenv.TLSKeyFile, tlsMountPath+"/"+corev1.TLSPrivateKeyKey)
	}
	addDuration(serverenv.AccessLifetime, as.Spec.Tokens.MaxLifetime.Duration)
	addDuration(serverenv.RefreshLifetime, as.Spec.Tokens.RefreshLifetime.Duration)
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
