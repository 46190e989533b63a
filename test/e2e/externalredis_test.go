package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// runExternalRedis runs a Redis the platform manages itself, as an AuthService's
// spec.redis.external names one: a Deployment of the suite's Redis image with the password
// from a Secret, and a Service. It returns the address the pods use (the Service's DNS name)
// and the one the host reaches (its ClusterIP).
func runExternalRedis(t *testing.T, ns, name, password string) (inCluster, fromHost string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	conf := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-conf", Namespace: ns},
		Data:       map[string][]byte{"redis.conf": fmt.Appendf(nil, "requirepass %s\nsave \"\"\nappendonly no\n", password)},
	}
	restricted := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "redis", Image: imagebuild.RedisImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Command:         []string{"redis-server", "/etc/redis/redis.conf"},
						Ports:           []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}},
						VolumeMounts:    []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/redis", ReadOnly: true}, {Name: "data", MountPath: "/data"}},
						SecurityContext: restricted,
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("redis")}},
							PeriodSeconds: 1,
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "conf", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: conf.Name}}},
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 6379, TargetPort: intstr.FromString("redis")}}},
	}
	if err := kube.Create(ctx, conf); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := waitDeploymentAvailable(ctx, types.NamespacedName{Namespace: ns, Name: name}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s.%s.svc:6379", name, ns), net.JoinHostPort(svc.Spec.ClusterIP, "6379")
}
