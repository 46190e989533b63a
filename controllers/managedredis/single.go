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

// ConfigSecret is the managed Redis Secret holding password and the redis.conf that
// requires it, with a maxmemory for the container's memory limit. It fails, and nothing is
// to be written, when the password cannot go into redis.conf safely.
func ConfigSecret(as *authv1alpha1.AuthService, password string) (*corev1.Secret, error) {
	conf, err := redisconf.Render(password, redisconf.MaxMemory(Spec(as).Resources.Limits.Memory()))
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{PasswordKey: []byte(password), ConfigKey: []byte(conf)},
	}, nil
}

// podTemplate is the managed Redis pod; confVersion, the version of the Secret that holds
// redis.conf, rolls it when the configuration changes.
func podTemplate(as *authv1alpha1.AuthService, confVersion string) corev1.PodTemplateSpec {
	managed := Spec(as)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      objects.Labels(as, appRedis, component),
			Annotations: map[string]string{ConfigChecksumAnnotation: confVersion},
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

// configVolume projects redis.conf and the password from the managed Redis Secret.
func configVolume(as *authv1alpha1.AuthService) corev1.Volume {
	return corev1.Volume{
		Name: "config",
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: as.RedisName(),
			Items: []corev1.KeyToPath{
				{Key: ConfigKey, Path: "redis.conf"},
				{Key: PasswordKey, Path: "password"},
			},
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
