package controllers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func TestWithDefaults_FillsWhatIsEmptyAndKeepsWhatIsSet(t *testing.T) {
	oneGi := resource.MustParse("1Gi")
	cases := []struct {
		name  string
		spec  authv1alpha1.AuthServiceSpec
		check func(t *testing.T, d *authv1alpha1.AuthServiceSpec)
	}{{
		name: "empty spec with a managed HA Redis gets the CRD's defaults",
		spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}}},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			m := d.Redis.Managed
			if d.Server.Port != 80 || d.Server.PodDisruptionBudget.MaxUnavailable.IntValue() != 1 ||
				d.Tokens.RefreshLifetime.Duration != 720*time.Hour || d.Tokens.Leeway.Duration != 30*time.Second {
				t.Errorf("server/tokens defaults = port %d, maxUnavailable %v, refresh %s, leeway %s", d.Server.Port,
					d.Server.PodDisruptionBudget.MaxUnavailable, d.Tokens.RefreshLifetime.Duration, d.Tokens.Leeway.Duration)
			}
			if m.Image != "redis:7.4-alpine" || m.AppendFsync != "always" || !*m.Persistence.Enabled || m.Persistence.Size.Cmp(oneGi) != 0 {
				t.Errorf("managed Redis defaults = %q %q %v %v", m.Image, m.AppendFsync, *m.Persistence.Enabled, m.Persistence.Size)
			}
			if ha := m.HighAvailability; *ha.Replicas != 3 || *ha.Sentinels != 3 || *ha.MinReplicasAcked != 1 {
				t.Errorf("HA defaults = %d replicas, %d sentinels, %d acks", *ha.Replicas, *ha.Sentinels, *ha.MinReplicasAcked)
			}
			if d.Tokens.SessionMaxLifetime.Duration != 2160*time.Hour || d.Issuance.RefreshGracePeriod.Duration != 30*time.Second || *d.Issuance.RefreshesPerMinute != 10 {
				t.Errorf("session defaults = lifetime %s, grace %s, %d refreshes a minute", d.Tokens.SessionMaxLifetime.Duration, d.Issuance.RefreshGracePeriod.Duration, *d.Issuance.RefreshesPerMinute)
			}
			if *m.SessionCapacity != 100000 || m.Resources.Limits.Memory().String() != "271Mi" || m.Resources.Requests.Memory().String() != "271Mi" {
				t.Errorf("managed Redis memory = capacity %d, limits %v, requests %v; want 100000 sessions in 271Mi", *m.SessionCapacity, m.Resources.Limits, m.Resources.Requests)
			}
		},
	}, {
		name: "a managed Redis without a memory limit is sized for its session capacity, keeping its CPU and a memory request set",
		spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{
			SessionCapacity: ptr.To[int32](1000000),
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
		}}},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			r := d.Redis.Managed.Resources
			if r.Limits.Memory().String() != "2469Mi" || r.Limits.Cpu().String() != "1" || r.Requests.Memory().String() != "1Gi" {
				t.Errorf("resources = %+v, want a 2469Mi memory limit for a million sessions, the CPU limit and the memory request kept", r)
			}
		},
	}, {
		name: "values the user set are kept",
		spec: authv1alpha1.AuthServiceSpec{
			Server: authv1alpha1.ServerSpec{Port: 8443, PodDisruptionBudget: authv1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("50%"))}},
			Tokens: authv1alpha1.TokensSpec{RefreshLifetime: metav1.Duration{Duration: time.Hour}, Leeway: metav1.Duration{Duration: time.Second}},
			Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{
				Image: "redis:8", AppendFsync: "everysec",
				Resources:        corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
				Persistence:      authv1alpha1.RedisPersistenceSpec{Enabled: ptr.To(false), Size: ptr.To(resource.MustParse("5Gi"))},
				HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{Replicas: ptr.To[int32](5), Sentinels: ptr.To[int32](5), MinReplicasAcked: ptr.To[int32](2)},
			}},
		},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			m := d.Redis.Managed
			if d.Server.Port != 8443 || d.Server.PodDisruptionBudget.MaxUnavailable.String() != "50%" ||
				d.Tokens.RefreshLifetime.Duration != time.Hour || d.Tokens.Leeway.Duration != time.Second {
				t.Errorf("server/tokens = %+v %+v", d.Server, d.Tokens)
			}
			if m.Image != "redis:8" || m.AppendFsync != "everysec" || *m.Persistence.Enabled || m.Persistence.Size.String() != "5Gi" {
				t.Errorf("managed Redis = %+v", m)
			}
			if ha := m.HighAvailability; *ha.Replicas != 5 || *ha.Sentinels != 5 || *ha.MinReplicasAcked != 2 {
				t.Errorf("HA = %+v", ha)
			}
			if r := m.Resources; r.Limits.Memory().String() != "64Mi" || r.Requests.Memory() != nil && !r.Requests.Memory().IsZero() {
				t.Errorf("resources = %+v, want the user's 64Mi limit alone", r)
			}
		},
	}, {
		name: "an external Redis gets no managed defaults",
		spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{External: &authv1alpha1.ExternalRedisSpec{Addresses: []authv1alpha1.RedisAddress{"r:6379"}}}},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			if d.Redis.Managed != nil {
				t.Errorf("managed = %+v, want nil", d.Redis.Managed)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.spec.DeepCopy()
			tc.check(t, withDefaults(&tc.spec))
			if !equality.Semantic.DeepEqual(before, &tc.spec) {
				t.Error("withDefaults changed its input")
			}
		})
	}
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
