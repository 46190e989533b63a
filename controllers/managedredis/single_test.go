package managedredis

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
)

// These build the desired objects from values alone; no API server is involved. They assert
// the fields that matter, not a snapshot.

func testAuthService() *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "auth"},
		Spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{}}}}
}

func TestService_SendsThePortToTheNamedContainerPort(t *testing.T) {
	s := service(testAuthService())
	if s.Name != "auth-redis" || s.Namespace != "prod" || s.Spec.Selector["app.kubernetes.io/name"] != "redis" ||
		s.Spec.Selector["app.kubernetes.io/instance"] != "auth" {
		t.Errorf("Service %s/%s selects %v", s.Namespace, s.Name, s.Spec.Selector)
	}
	if len(s.Spec.Ports) != 1 {
		t.Fatalf("ports %v", s.Spec.Ports)
	}
	if p := s.Spec.Ports[0]; p.Port != Port || p.TargetPort != intstr.FromString("redis") || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("port %+v, want %d to redis", p, Port)
	}
}

func TestRedisNetworkPolicy_OnlyTheAuthServersReachRedis(t *testing.T) {
	np := networkPolicy(testAuthService())
	if np.Name != "auth-redis" || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "redis" ||
		!slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policy %s selects %v for %v", np.Name, np.Spec.PodSelector, np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("ingress %v", np.Spec.Ingress)
	}
	rule := np.Spec.Ingress[0]
	var from []string
	for _, peer := range rule.From {
		if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector.MatchLabels["app.kubernetes.io/instance"] != "auth" {
			t.Errorf("peer %+v reaches beyond this AuthService's pods", peer)
			continue
		}
		from = append(from, peer.PodSelector.MatchLabels["app.kubernetes.io/name"])
	}
	if !slices.Equal(from, []string{objects.AppVerifier, objects.AppIssuer}) {
		t.Errorf("from %v", from)
	}
	if len(rule.Ports) != 1 || rule.Ports[0].Port.IntValue() != Port || ptr.Deref(rule.Ports[0].Protocol, "") != corev1.ProtocolTCP {
		t.Errorf("ports %v", rule.Ports)
	}
}

func TestSingleRedis_PodStatefulSetAndDeployment(t *testing.T) {
	as := testAuthService()
	as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{AppendFsync: "always"}
	as.Spec.Redis.Managed.Persistence.StorageClassName = ptr.To("fast")
	as.Spec.Redis.Managed.Persistence.Size = ptr.To(resource.MustParse("2Gi"))
	template := podTemplate(as, "conf-v7")

	t.Run("pod", func(t *testing.T) {
		pod := template.Spec
		if template.Annotations[ConfigChecksumAnnotation] != "conf-v7" {
			t.Errorf("annotations %v: a new redis.conf must roll the pod", template.Annotations)
		}
		if ptr.Deref(pod.AutomountServiceAccountToken, true) {
			t.Error("Redis mounts a ServiceAccount token")
		}
		podtest.RestrictedContexts(t, pod, uid)
		c := pod.Containers[0]
		if c.Image != defaultImage || podtest.FlagValue(c.Command, "--appendfsync") != "always" || podtest.FlagValue(c.Command, "--appendonly") != "yes" ||
			podtest.FlagValue(c.Command, "--port") != "6379" || podtest.FlagValue(c.Command, "--dir") != dataDir {
			t.Errorf("container %s runs %v", c.Image, c.Command)
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "redis" || c.Ports[0].ContainerPort != Port {
			t.Errorf("ports %v", c.Ports)
		}
		if probe := c.LivenessProbe; probe == nil || probe.TCPSocket == nil || probe.TCPSocket.Port != intstr.FromString("redis") {
			t.Errorf("liveness %+v", probe)
		}
		if probe := c.ReadinessProbe; probe == nil || probe.Exec == nil || strings.Join(probe.Exec.Command, " ") != "sh -c "+redisReadinessScript {
			t.Errorf("readiness %+v, want the exec probe of probes.go", probe)
		}
		if conf := podtest.Volume(pod, "config"); conf == nil || conf.Secret == nil || len(conf.Secret.Items) != 2 || conf.Secret.Items[1].Path != "password" {
			t.Errorf("config volume %+v: the readiness probe reads the administrator's password from it, and a single pod needs no other", conf)
		}
		if conf := podtest.Volume(pod, "config"); conf == nil || conf.Secret == nil || conf.Secret.SecretName != "auth-redis" {
			t.Errorf("config volume %+v", conf)
		}
	})

	t.Run("StatefulSet", func(t *testing.T) {
		sts := statefulSet(as, template)
		if sts.Name != "auth-redis" || sts.Spec.ServiceName != "auth-redis" || ptr.Deref(sts.Spec.Replicas, 0) != 1 {
			t.Errorf("StatefulSet %s service %s replicas %v", sts.Name, sts.Spec.ServiceName, sts.Spec.Replicas)
		}
		podtest.Selects(t, sts.Spec.Selector, sts.Spec.Template, "redis")
		if len(sts.Spec.VolumeClaimTemplates) != 1 {
			t.Fatalf("claims %v", sts.Spec.VolumeClaimTemplates)
		}
		claim := sts.Spec.VolumeClaimTemplates[0]
		size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
		if claim.Name != "data" || size.String() != "2Gi" || ptr.Deref(claim.Spec.StorageClassName, "") != "fast" ||
			!slices.Equal(claim.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("claim %s %s class %v modes %v", claim.Name, size.String(), claim.Spec.StorageClassName, claim.Spec.AccessModes)
		}
		if podtest.Volume(sts.Spec.Template.Spec, "data") != nil {
			t.Error("the data volume is a pod volume as well as a claim")
		}
	})

	t.Run("Deployment", func(t *testing.T) {
		d := deployment(as, template)
		if d.Name != "auth-redis" || ptr.Deref(d.Spec.Replicas, 0) != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("Deployment %s replicas %v strategy %v: two Redis must never run at once", d.Name, d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		podtest.Selects(t, d.Spec.Selector, d.Spec.Template, "redis")
		if data := podtest.Volume(d.Spec.Template.Spec, "data"); data == nil || data.EmptyDir == nil {
			t.Errorf("data volume %+v, want an emptyDir", data)
		}
		if podtest.Volume(template.Spec, "data") != nil {
			t.Error("redisDeployment changed the template it was given")
		}
	})
}

func TestKeepVolumeClaimTemplate_KeepsWhatTheAPIServerWillNotChange(t *testing.T) {
	sts := func(size string, class *string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "auth-redis"}, Spec: appsv1.StatefulSetSpec{
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: class,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			}}},
		}}
	}
	cases := []struct {
		name      string
		existing  *appsv1.StatefulSet
		desired   *appsv1.StatefulSet
		wantSize  string
		wantClass string
		wantKept  bool
	}{
		{"no StatefulSet yet", nil, sts("2Gi", ptr.To("fast")), "2Gi", "fast", false},
		{"same template", sts("1Gi", ptr.To("fast")), sts("1Gi", ptr.To("fast")), "1Gi", "fast", false},
		{"spec leaves the class to the cluster", sts("1Gi", ptr.To("standard")), sts("1Gi", nil), "1Gi", "", false},
		{"bigger volume asked for", sts("1Gi", nil), sts("5Gi", nil), "1Gi", "", true},
		{"other class asked for", sts("1Gi", ptr.To("standard")), sts("1Gi", ptr.To("fast")), "1Gi", "standard", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.desired.DeepCopy()
			got, kept := keepVolumeClaimTemplate(tc.existing, tc.desired)
			spec := got.Spec.VolumeClaimTemplates[0].Spec
			if spec.Resources.Requests.Storage().String() != tc.wantSize || ptr.Deref(spec.StorageClassName, "") != tc.wantClass {
				t.Errorf("template = %s %q, want %s %q", spec.Resources.Requests.Storage(), ptr.Deref(spec.StorageClassName, ""), tc.wantSize, tc.wantClass)
			}
			if kept != tc.wantKept {
				t.Errorf("kept = %v, want %v (RedisReady explains it: TestRedisReadyCondition)", kept, tc.wantKept)
			}
			if !equality.Semantic.DeepEqual(before, tc.desired) {
				t.Error("keepVolumeClaimTemplate changed its input")
			}
		})
	}
}
