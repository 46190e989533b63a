package managedredis

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

// TestResources_DefaultMemoryLimitAndBoundedInitAndSentinels: a managed Redis whose spec
// sets no resources gets a memory limit (so redis.conf caps its data with maxmemory), a
// request the size of the limit and a limit raised to a larger request; the replicated
// Redis's topology init container and the Sentinels have requests and memory limits of
// their own, not the data Redis's.
func TestResources_DefaultMemoryLimitAndBoundedInitAndSentinels(t *testing.T) {
	def := redisconf.MemoryFor(int64(defaultSessionCapacity))
	for _, tc := range []struct {
		name              string
		spec              corev1.ResourceRequirements
		wantLimit, wantRq string
	}{
		{"none set", corev1.ResourceRequirements{}, def.String(), def.String()},
		{"a larger request", corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}, "1Gi", "1Gi"},
		{"a smaller request", corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}, def.String(), "64Mi"},
		{"a limit", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}, "2Gi", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, managed := haAuthService()
			managed.Resources = tc.spec
			redisSet := replicatedStatefulSet(as, HA(as), "v", "authserver:test")
			got := redisSet.Spec.Template.Spec.Containers[0].Resources
			if got.Limits.Memory().String() != tc.wantLimit || got.Requests.Memory().String() != tc.wantRq {
				t.Errorf("Redis resources = %v, want limit %s request %s", got, tc.wantLimit, tc.wantRq)
			}
			if tc.spec.Limits == nil && tc.spec.Requests == nil && as.Spec.Redis.Managed.Resources.Limits != nil {
				t.Error("Spec changed the user's spec")
			}
			sentinels := sentinelStatefulSet(as, HA(as), "v", "authserver:test")
			for what, c := range map[string]corev1.Container{
				"topology init of Redis":    redisSet.Spec.Template.Spec.InitContainers[0],
				"topology init of Sentinel": sentinels.Spec.Template.Spec.InitContainers[0],
				"Sentinel":                  sentinels.Spec.Template.Spec.Containers[0],
			} {
				r := c.Resources
				// The Redis pods' init step copies the auth server (some 70 MB) for the start gate.
				if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() || r.Limits.Memory().Cmp(resource.MustParse("160Mi")) > 0 {
					t.Errorf("%s resources = %v, want CPU and memory requests and a memory limit of at most 160Mi", what, r)
				}
			}
		})
	}
}

func TestSpec_FillsWhatIsEmptyAndKeepsWhatIsSet(t *testing.T) {
	oneGi := resource.MustParse("1Gi")
	cases := []struct {
		name  string
		spec  authv1alpha1.AuthServiceSpec
		check func(t *testing.T, m *authv1alpha1.ManagedRedisSpec)
	}{{
		name: "an empty managed HA Redis gets the CRD's defaults",
		spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}}},
		check: func(t *testing.T, m *authv1alpha1.ManagedRedisSpec) {
			if m.Image != "redis:7.4-alpine" || m.AppendFsync != "always" || !*m.Persistence.Enabled || m.Persistence.Size.Cmp(oneGi) != 0 {
				t.Errorf("managed Redis defaults = %q %q %v %v", m.Image, m.AppendFsync, *m.Persistence.Enabled, m.Persistence.Size)
			}
			if ha := m.HighAvailability; *ha.Replicas != 3 || *ha.Sentinels != 3 || *ha.MinReplicasAcked != 1 {
				t.Errorf("HA defaults = %d replicas, %d sentinels, %d acks", *ha.Replicas, *ha.Sentinels, *ha.MinReplicasAcked)
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
		check: func(t *testing.T, m *authv1alpha1.ManagedRedisSpec) {
			r := m.Resources
			if r.Limits.Memory().String() != "2469Mi" || r.Limits.Cpu().String() != "1" || r.Requests.Memory().String() != "1Gi" {
				t.Errorf("resources = %+v, want a 2469Mi memory limit for a million sessions, the CPU limit and the memory request kept", r)
			}
		},
	}, {
		name: "values the user set are kept",
		spec: authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{
			Image: "redis:8", AppendFsync: "everysec",
			Resources:        corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
			Persistence:      authv1alpha1.RedisPersistenceSpec{Enabled: ptr.To(false), Size: ptr.To(resource.MustParse("5Gi"))},
			HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{Replicas: ptr.To[int32](5), Sentinels: ptr.To[int32](5), MinReplicasAcked: ptr.To[int32](2)},
		}}},
		check: func(t *testing.T, m *authv1alpha1.ManagedRedisSpec) {
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
		check: func(t *testing.T, m *authv1alpha1.ManagedRedisSpec) {
			if m != nil {
				t.Errorf("managed = %+v, want nil", m)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			as := &authv1alpha1.AuthService{Spec: tc.spec}
			before := as.DeepCopy()
			tc.check(t, Spec(as))
			if !equality.Semantic.DeepEqual(before, as) {
				t.Error("Spec changed its input")
			}
		})
	}
}
