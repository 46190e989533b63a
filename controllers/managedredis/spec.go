package managedredis

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

const (
	// PasswordKey is the data key of the managed Redis Secret (NAME-redis) that holds the
	// administrator's password (Redis's default user); only the Redis pods mount it.
	PasswordKey = "password"
	// AuthServerPasswordKey holds the password of the auth servers' ACL user, at Redis and at
	// the Sentinels (redisconf.AuthServerUser).
	AuthServerPasswordKey = "authserver-password"
	// SentinelPasswordKey holds the Sentinels' own password, also their ACL user's at Redis
	// (redisconf.SentinelUser); only the Sentinel pods mount it.
	SentinelPasswordKey = "sentinel-password"
	// ConfigKey is the data key of the managed Redis Secret that holds redis.conf.
	ConfigKey = "redis.conf"
	// SentinelUsersKey holds the ACL user lines of sentinel.conf.
	SentinelUsersKey = "sentinel-users.conf"
	// ACLAnnotation on a Redis or Sentinel pod template says its pods define the ACL users:
	// the auth servers log in as redisconf.AuthServerUser once every pod does.
	ACLAnnotation = "auth.hiringo.tech/redis-acl"
	// ConfigChecksumAnnotation on the Redis pod template is a digest of the UID and
	// resourceVersion of the Secret that holds redis.conf (never of the password or of
	// redis.conf), so a new configuration rolls the pods.
	ConfigChecksumAnnotation = "auth.hiringo.tech/redis-config-checksum"
	// Port is the port of Redis and of its Service.
	Port = 6379

	// component is the component label of every object of the managed Redis.
	component = "redis"
	// uid runs the Redis and Sentinel containers, as the official images do.
	uid     = 999
	confDir = "/etc/redis"
	dataDir = "/data"
)

// The values for spec.redis.managed fields left empty. They are the CRD's defaults (the API
// server fills them in on write); the builders apply them again so that a spec written
// before a default existed, or built in a test, gives the same objects.
const (
	defaultImage                  = "redis:7.4-alpine"
	defaultAppendFsync            = authv1alpha1.AppendFsync("always")
	defaultVolumeSize             = "1Gi"
	defaultReplicas         int32 = 3
	defaultSentinels        int32 = 3
	defaultMinReplicasAcked int32 = 1
	defaultSessionCapacity  int32 = 100000
)

// Spec is a copy of spec.redis.managed with every empty field the builders read filled in;
// nil when the spec names no managed Redis. The AuthService is left as it is.
func Spec(as *authv1alpha1.AuthService) *authv1alpha1.ManagedRedisSpec {
	m := as.Spec.Redis.Managed.DeepCopy()
	if m == nil {
		return nil
	}
	if m.Image == "" {
		m.Image = defaultImage
	}
	if m.AppendFsync == "" {
		m.AppendFsync = defaultAppendFsync
	}
	if m.Persistence.Enabled == nil {
		m.Persistence.Enabled = ptr.To(true)
	}
	if m.Persistence.Size == nil {
		m.Persistence.Size = ptr.To(resource.MustParse(defaultVolumeSize))
	}
	if m.SessionCapacity == nil {
		m.SessionCapacity = ptr.To(defaultSessionCapacity)
	}
	// Without a limit redis.conf gets no maxmemory, and a logout storm grows Redis until
	// the kernel kills it (docs/operator.md, sizing the managed Redis).
	defaultMemory(&m.Resources, redisconf.MemoryFor(int64(*m.SessionCapacity)))
	if ha := m.HighAvailability; ha != nil {
		if ha.Replicas == nil {
			ha.Replicas = ptr.To(defaultReplicas)
		}
		if ha.Sentinels == nil {
			ha.Sentinels = ptr.To(defaultSentinels)
		}
		if ha.MinReplicasAcked == nil {
			ha.MinReplicasAcked = ptr.To(defaultMinReplicasAcked)
		}
	}
	return m
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

// Replicated reports whether the managed Redis runs as a primary, replicas and Sentinels:
// spec.redis.managed.highAvailability, with persistence (the CRD requires it).
func Replicated(as *authv1alpha1.AuthService) bool {
	m := Spec(as)
	return m != nil && m.HighAvailability != nil && *m.Persistence.Enabled
}

// HighAvailability are the defaulted numbers of spec.redis.managed.highAvailability.
type HighAvailability struct {
	Replicas, Sentinels, MinReplicasAcked int32
}

// HA is the replicated Redis's HighAvailability; call it only when Replicated.
func HA(as *authv1alpha1.AuthService) HighAvailability {
	ha := Spec(as).HighAvailability
	return HighAvailability{Replicas: *ha.Replicas, Sentinels: *ha.Sentinels, MinReplicasAcked: *ha.MinReplicasAcked}
}

// Quorum is the majority of the Sentinels, which must agree before a failover.
func (h HighAvailability) Quorum() int32 { return h.Sentinels/2 + 1 }

// ServiceAddress is where the auth servers reach the one Redis pod.
func ServiceAddress(as *authv1alpha1.AuthService) string {
	return fmt.Sprintf("%s.%s.svc:%d", as.RedisName(), as.Namespace, Port)
}

// SentinelAddress is where the auth servers reach the Sentinels of the replicated Redis.
func SentinelAddress(as *authv1alpha1.AuthService) string {
	return fmt.Sprintf("%s.%s.svc:%d", as.RedisSentinelName(), as.Namespace, redisconf.SentinelPort)
}

// MasterName is the Sentinel master name: the AuthService's name.
func MasterName(as *authv1alpha1.AuthService) string { return as.Name }
