package managedredis

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

// appRedis is the app name of the Redis pods, one or replicated.
const appRedis = "redis"

// NewPassword makes a 256-bit random password in hex, safe to write into redis.conf.
func NewPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating Redis password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Credentials are the managed Redis's passwords: its administrator's (PasswordKey), the
// auth servers' (AuthServerPasswordKey) and the Sentinels' (SentinelPasswordKey).
type Credentials struct {
	Admin, AuthServer, Sentinel string
}

// CredentialsOf reads the passwords a managed Redis Secret holds; nil gives none.
func CredentialsOf(s *corev1.Secret) Credentials {
	if s == nil {
		return Credentials{}
	}
	return Credentials{Admin: string(s.Data[PasswordKey]), AuthServer: string(s.Data[AuthServerPasswordKey]), Sentinel: string(s.Data[SentinelPasswordKey])}
}

// Filled is c with a new password for each one that is empty; the others are kept.
func (c Credentials) Filled() (Credentials, error) {
	for _, p := range []*string{&c.Admin, &c.AuthServer, &c.Sentinel} {
		if *p != "" {
			continue
		}
		var err error
		if *p, err = NewPassword(); err != nil {
			return Credentials{}, err
		}
	}
	return c, nil
}

// ConfigSecret is the managed Redis Secret: the passwords, the redis.conf that requires
// them (the administrator as the default user, the ACL users of the auth servers, bounded
// to keyPrefix, and of the Sentinels) with a maxmemory for the container's memory limit,
// and the Sentinels' ACL users. It fails, and nothing is to be written, when a password
// or the prefix cannot go into the configuration safely.
func ConfigSecret(as *authv1alpha1.AuthService, c Credentials, keyPrefix string) (*corev1.Secret, error) {
	for key, p := range map[string]string{PasswordKey: c.Admin, AuthServerPasswordKey: c.AuthServer, SentinelPasswordKey: c.Sentinel} {
		if err := redisconf.ValidatePassword(p); err != nil {
			return nil, fmt.Errorf("key %q holds a password that cannot be written into redis.conf: %w", key, err)
		}
	}
	conf, err := redisconf.Render(c.Admin, redisconf.MaxMemory(Spec(as).Resources.Limits.Memory()))
	if err != nil {
		return nil, err
	}
	users := redisconf.Users{AuthServer: c.AuthServer, KeyPrefix: keyPrefix}
	if Replicated(as) {
		users.Sentinel = c.Sentinel
	}
	userLines, err := redisconf.RenderUsers(users)
	if err != nil {
		return nil, err
	}
	sentinelUsers, err := redisconf.RenderSentinelUsers(c.AuthServer, c.Sentinel, c.Admin)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			PasswordKey: []byte(c.Admin), AuthServerPasswordKey: []byte(c.AuthServer), SentinelPasswordKey: []byte(c.Sentinel),
			ConfigKey: []byte(conf + userLines), SentinelUsersKey: []byte(sentinelUsers),
		},
	}, nil
}

// podTemplate is the managed Redis pod; confVersion, the version of the Secret that holds
// redis.conf, rolls it when the configuration changes.
func podTemplate(as *authv1alpha1.AuthService, confVersion string) corev1.PodTemplateSpec {
	managed := Spec(as)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      objects.Labels(as, appRedis, component),
			Annotations: map[string]string{ConfigChecksumAnnotation: confVersion, ACLAnnotation: "true"},
		},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext:              objects.RestrictedPodSecurityContext(uid),
			Containers: []corev1.Container{{
				Name:  "redis",
				Image: managed.Image,
				Command: []string{"redis-server", confDir + "/redis.conf", "--dir", dataDir, "--appendonly", "yes",
					"--appendfsync", string(managed.AppendFsync), "--port", fmt.Sprint(Port)},
				Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: confDir, ReadOnly: true},
					{Name: "data", MountPath: dataDir},
				},
				Resources:       managed.Resources,
				SecurityContext: objects.RestrictedContainerSecurityContext(),
				LivenessProbe:   liveness("redis"),
				ReadinessProbe:  execReadiness(redisReadinessScript),
			}},
			Volumes: []corev1.Volume{configVolume(as)},
		},
	}
}

// configVolume projects, from the managed Redis Secret, what a Redis pod needs: redis.conf
// and the administrator's password; replicated, also the auth servers' password, as which
// its start gate asks the Sentinels.
func configVolume(as *authv1alpha1.AuthService) corev1.Volume {
	items := []corev1.KeyToPath{{Key: ConfigKey, Path: "redis.conf"}, {Key: PasswordKey, Path: "password"}}
	if Replicated(as) {
		items = append(items, corev1.KeyToPath{Key: AuthServerPasswordKey, Path: "authserver-password"})
	}
	return secretVolume(as, items...)
}

// sentinelConfigVolume projects what a Sentinel pod needs: its own password (as the file
// its readiness probe reads) and the ACL users of sentinel.conf; never the administrator's.
func sentinelConfigVolume(as *authv1alpha1.AuthService) corev1.Volume {
	return secretVolume(as, corev1.KeyToPath{Key: SentinelPasswordKey, Path: "password"}, corev1.KeyToPath{Key: SentinelUsersKey, Path: "sentinel-users.conf"})
}

// secretVolume is the volume "config" holding items of the managed Redis Secret.
func secretVolume(as *authv1alpha1.AuthService, items ...corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{
		Name: "config",
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  as.RedisName(),
			Items:       items,
			DefaultMode: ptr.To[int32](0o440),
		}},
	}
}

// statefulSet runs the one persistent Redis pod, governed by its Service.
func statefulSet(as *authv1alpha1.AuthService, template corev1.PodTemplateSpec) *appsv1.StatefulSet {
	persistence := Spec(as).Persistence
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: as.RedisName(),
			Selector:    &metav1.LabelSelector{MatchLabels: objects.Selector(as, appRedis)},
			Template:    template,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: objects.Labels(as, appRedis, component)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: persistence.StorageClassName,
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *persistence.Size}},
				},
			}},
		},
	}
}

// deployment runs the one Redis pod without persistence, its data in an emptyDir.
func deployment(as *authv1alpha1.AuthService, template corev1.PodTemplateSpec) *appsv1.Deployment {
	template.Spec.Volumes = append(template.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, appRedis)},
			Template: template,
			// One Redis at a time: two would each hold half of the blacklist.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		},
	}
}

func service(as *authv1alpha1.AuthService) *corev1.Service {
	return objects.ClusterService(as, as.RedisName(), appRedis, component, "redis", Port)
}

// networkPolicy lets only this AuthService's verifier and issuer pods reach its Redis.
func networkPolicy(as *authv1alpha1.AuthService) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(Port)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: objects.Selector(as, appRedis)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppVerifier)}},
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppIssuer)}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port}},
			}},
		},
	}
}

// keepVolumeClaimTemplate returns desired with the existing StatefulSet's volume claim
// template, which the API server does not let change, and whether the spec asks for
// another one. existing is nil when there is none; desired is left as it is.
func keepVolumeClaimTemplate(existing, desired *appsv1.StatefulSet) (*appsv1.StatefulSet, bool) {
	if existing == nil || len(existing.Spec.VolumeClaimTemplates) != 1 {
		return desired, false
	}
	have, want := existing.Spec.VolumeClaimTemplates[0].Spec, desired.Spec.VolumeClaimTemplates[0].Spec
	sameSize := have.Resources.Requests.Storage().Cmp(*want.Resources.Requests.Storage()) == 0
	sameClass := want.StorageClassName == nil || ptr.Deref(have.StorageClassName, "") == *want.StorageClassName
	if sameSize && sameClass {
		return desired, false
	}
	kept := desired.DeepCopy()
	kept.Spec.VolumeClaimTemplates[0].Spec.Resources = *have.Resources.DeepCopy()
	kept.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = have.StorageClassName
	return kept, true
}
