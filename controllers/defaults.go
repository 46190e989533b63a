package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

// The operator's values for spec fields left empty. They are the CRD's defaults (the API
// server fills them in on write); the operator applies them again so that a spec written
// before a default existed, or built in a test, gives the same objects.
const (
	defaultServerPort         int32 = 80
	defaultRedisImage               = "redis:7.4-alpine"
	defaultAppendFsync              = authv1alpha1.AppendFsync("always")
	defaultRedisVolumeSize          = "1Gi"
	defaultRedisReplicas      int32 = 3
	defaultSentinels          int32 = 3
	defaultMinReplicasAcked   int32 = 1
	defaultRefreshLifetime          = 720 * time.Hour
	defaultSessionMaxLifetime       = 2160 * time.Hour
	defaultLeeway                   = 30 * time.Second
	defaultRefreshGracePeriod       = 30 * time.Second
	defaultRefreshesPerMinute       = int32(10)
	defaultSessionCapacity          = int32(100000)
)

// withDefaults is the one place the builders' defaults live: it returns a copy of spec with
// every empty field they read filled in. The input is left as it is, as it is the user's.
func withDefaults(spec *authv1alpha1.AuthServiceSpec) *authv1alpha1.AuthServiceSpec {
	d := spec.DeepCopy()
	if d.Server.Port == 0 {
		d.Server.Port = defaultServerPort
	}
	if d.Server.PodDisruptionBudget.MaxUnavailable == nil {
		d.Server.PodDisruptionBudget.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	}
	if d.Tokens.RefreshLifetime.Duration == 0 {
		d.Tokens.RefreshLifetime = metav1.Duration{Duration: defaultRefreshLifetime}
	}
	if d.Tokens.Leeway.Duration == 0 {
		d.Tokens.Leeway = metav1.Duration{Duration: defaultLeeway}
	}
	if d.Tokens.SessionMaxLifetime.Duration == 0 {
		d.Tokens.SessionMaxLifetime = metav1.Duration{Duration: defaultSessionMaxLifetime}
	}
	if d.Issuance.RefreshGracePeriod == nil {
		d.Issuance.RefreshGracePeriod = &metav1.Duration{Duration: defaultRefreshGracePeriod}
	}
	if d.Issuance.RefreshesPerMinute == nil {
		d.Issuance.RefreshesPerMinute = ptr.To(defaultRefreshesPerMinute)
	}
	if m := d.Redis.Managed; m != nil {
		if m.Image == "" {
			m.Image = defaultRedisImage
		}
		if m.AppendFsync == "" {
			m.AppendFsync = defaultAppendFsync
		}
		if m.Persistence.Enabled == nil {
			m.Persistence.Enabled = ptr.To(true)
		}
		if m.Persistence.Size == nil {
			m.Persistence.Size = ptr.To(resource.MustParse(defaultRedisVolumeSize))
		}
		if m.SessionCapacity == nil {
			m.SessionCapacity = ptr.To(defaultSessionCapacity)
		}
		// Without a limit redis.conf gets no maxmemory, and a logout storm grows Redis until
		// the kernel kills it (docs/operator.md, sizing the managed Redis).
		defaultMemory(&m.Resources, redisconf.MemoryFor(int64(*m.SessionCapacity)))
		if ha := m.HighAvailability; ha != nil {
			if ha.Replicas == nil {
				ha.Replicas = ptr.To(defaultRedisReplicas)
			}
			if ha.Sentinels == nil {
				ha.Sentinels = ptr.To(defaultSentinels)
			}
			if ha.MinReplicasAcked == nil {
				ha.MinReplicasAcked = ptr.To(defaultMinReplicasAcked)
			}
		}
	}
	return d
}

// defaultMemory gives r a memory limit of def when it has none, raised to the memory
// request when that is higher (a limit below the request is refused), and then a memory
// request equal to that limit when it has none. A limit the user set is left as it is
// (the API server gives a container without a request one equal to its limit).
func defaultMemory(r *corev1.ResourceRequirements, def resource.Quantity) {
	if _, ok := r.Limits[corev1.ResourceMemory]; ok {
		return
	}
	limit := def
	if req, ok := r.Requests[corev1.ResourceMemory]; ok && req.Cmp(limit) > 0 {
		limit = req
	}
	if r.Limits == nil {
		r.Limits = corev1.ResourceList{}
	}
	r.Limits[corev1.ResourceMemory] = limit
	if _, ok := r.Requests[corev1.ResourceMemory]; !ok {
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[corev1.ResourceMemory] = limit
	}
}
