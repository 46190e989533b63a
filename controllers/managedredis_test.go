package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// TestManagedRedis_MaxMemoryFollowsTheMemoryLimit: redis.conf caps the data at a share of
// the container's memory limit (internal/redisconf's test shows a full Redis then refuses a
// logout with 503 and stays up).
func TestManagedRedis_MaxMemoryFollowsTheMemoryLimit(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}
	})
	reconcileOnce(t, r, ns, "auth")
	conf := string(get(t, ns, "auth-redis", &corev1.Secret{}).Data[RedisConfigKey])
	if !strings.Contains(conf, "\nmaxmemory 40265280\n") || !strings.Contains(conf, "maxmemory-policy noeviction\n") {
		t.Errorf("redis.conf = %q, want maxmemory 60%% of 64Mi and noeviction", conf)
	}
}
