package managedredis

import (
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
)

func haAuthService() (*authv1alpha1.AuthService, *authv1alpha1.ManagedRedisSpec) {
	managed := &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	as.Spec.Redis.Managed = managed
	return as, managed
}

func TestRedisHAStatefulSet_PodZeroSeedsAndEveryPodAsksTheSentinels(t *testing.T) {
	as, managed := haAuthService()
	managed.HighAvailability.Replicas = ptr.To[int32](4)
	sts := replicatedStatefulSet(as, HA(as), "v1", "img:1")
	if ptr.Deref(sts.Spec.Replicas, 0) != 4 || sts.Spec.ServiceName != "auth-redis-headless" || sts.Name != "auth-redis" {
		t.Errorf("StatefulSet %s replicas %d service %s", sts.Name, ptr.Deref(sts.Spec.Replicas, 0), sts.Spec.ServiceName)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("volume claim templates = %+v, want the single pod's data claim so pod 0 keeps its volume", sts.Spec.VolumeClaimTemplates)
	}
	pod := sts.Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("init containers = %d, want the topology step", len(pod.InitContainers))
	}
	init := pod.InitContainers[0]
	args := init.Command
	want := map[string]string{
		"--role":           "redis",
		"--self":           "$(POD_NAME).auth-redis-headless.prod.svc:6379",
		"--redis-addrs":    "auth-redis-0.auth-redis-headless.prod.svc:6379,auth-redis-1.auth-redis-headless.prod.svc:6379,auth-redis-2.auth-redis-headless.prod.svc:6379,auth-redis-3.auth-redis-headless.prod.svc:6379",
		"--sentinel-addrs": "auth-redis-sentinel-0.auth-redis-headless.prod.svc:26379,auth-redis-sentinel-1.auth-redis-headless.prod.svc:26379,auth-redis-sentinel-2.auth-redis-headless.prod.svc:26379",
		"--master-name":    "auth",
		"--password-file":  "/etc/redis/password",
		"--base":           "/etc/redis/redis.conf",
		"--out":            "/run/redis/redis.conf",
	}
	for flag, v := range want {
		if got := podtest.FlagValue(args, flag); got != v {
			t.Errorf("topology %s = %q, want %q", flag, got, v)
		}
	}
	if init.Image != "img:1" || args[0] != "/authserver" || args[1] != "redis-topology" {
		t.Errorf("init = %s %v, want the auth-server image's redis-topology (no shell)", init.Image, args[:2])
	}
	if len(init.Env) != 1 || init.Env[0].ValueFrom == nil || init.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("init env = %+v, want POD_NAME from the downward API", init.Env)
	}
	if podtest.FlagValue(args, "--install") != redisGate || podtest.FlagValue(args, "--quorum") != "2" {
		t.Errorf("init installs %q with quorum %q, want the start gate at %s and quorum 2", podtest.FlagValue(args, "--install"), podtest.FlagValue(args, "--quorum"), redisGate)
	}
	redis := pod.Containers[0]
	// The start gate runs the same topology step before every start of redis-server.
	sep := slices.Index(redis.Command, "--")
	if redis.Command[0] != redisGate || sep < 0 || redis.Command[sep-1] != "--exec" {
		t.Fatalf("redis runs %v, want the start gate, then --exec -- redis-server", redis.Command)
	}
	// Only the gate elects a primary after a restart of every pod: the init step runs before
	// the container whose readiness lets the StatefulSet start the next pod.
	election := []string{"--record-file", "/data/topology-record", "--data-dir", "/data", "--electing-file", "/run/redis/electing"}
	gate, server := redis.Command[1:sep-1], redis.Command[sep+1:]
	if !slices.Equal(gate, append(slices.Clone(init.Command[1:len(init.Command)-2]), election...)) {
		t.Errorf("the gate's topology arguments %v differ from the init's %v and the election's %v", gate, init.Command[1:], election)
	}
	if probe := redis.ReadinessProbe; probe == nil || probe.Exec == nil || !slices.Equal(probe.Exec.Command[:2], []string{redisGate, "redis-probe"}) ||
		podtest.FlagValue(probe.Exec.Command, "--record-file") != "/data/topology-record" || podtest.FlagValue(probe.Exec.Command, "--electing-file") != "/run/redis/electing" {
		t.Errorf("readiness %+v, want the gate's redis-probe recording the offset on the volume", probe)
	}
	if server[0] != "redis-server" || server[1] != "/run/redis/redis.conf" {
		t.Errorf("redis runs %v, want redis-server on the writable copy the Sentinels may rewrite", server)
	}
	if len(redis.Env) != 1 || redis.Env[0].Name != "POD_NAME" {
		t.Errorf("redis env = %+v, want POD_NAME for the gate's --self", redis.Env)
	}
	if !slices.ContainsFunc(redis.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "runtime-config" && !m.ReadOnly }) {
		t.Errorf("redis mounts = %+v, want the writable runtime-config", redis.VolumeMounts)
	}
	if v := podtest.Volume(pod, "runtime-config"); v == nil || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("runtime-config = %+v, want an emptyDir in memory: a config fsync on a busy disk can put Sentinel in TILT mode", v)
	}
	podtest.Restricted(t, "redis", pod, uid)
	podtest.Restricted(t, "redis topology init", corev1.PodSpec{SecurityContext: pod.SecurityContext, Containers: pod.InitContainers, AutomountServiceAccountToken: pod.AutomountServiceAccountToken}, uid)
	wantPreferredSpread(t, pod, "redis")
}

func wantPreferredSpread(t *testing.T, pod corev1.PodSpec, app string) {
	t.Helper()
	a := pod.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Fatalf("%s affinity = %+v, want one preferred anti-affinity term", app, a)
	}
	term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector.MatchLabels[objects.NameLabel] != app {
		t.Errorf("%s anti-affinity term = %+v", app, term)
	}
}

func TestSentinelStatefulSet_QuorumTimingsAndWritableConfig(t *testing.T) {
	for _, tc := range []struct{ sentinels, quorum int32 }{{3, 2}, {5, 3}, {7, 4}} {
		as, managed := haAuthService()
		managed.HighAvailability.Sentinels = ptr.To(tc.sentinels)
		sts := sentinelStatefulSet(as, HA(as), "v1", "img:1")
		if ptr.Deref(sts.Spec.Replicas, 0) != tc.sentinels || sts.Spec.ServiceName != "auth-redis-headless" || sts.Name != "auth-redis-sentinel" {
			t.Errorf("StatefulSet %s replicas %d service %s", sts.Name, ptr.Deref(sts.Spec.Replicas, 0), sts.Spec.ServiceName)
		}
		pod := sts.Spec.Template.Spec
		args := pod.InitContainers[0].Command
		for flag, v := range map[string]string{
			"--role": "sentinel", "--quorum": strconv.Itoa(int(tc.quorum)), "--self": "$(POD_NAME).auth-redis-headless.prod.svc:26379",
			"--down-after": time.Second.String(), "--failover-timeout": (5 * time.Second).String(), "--out": "/run/redis/sentinel.conf",
		} {
			if got := podtest.FlagValue(args, flag); got != v {
				t.Errorf("%d Sentinels: topology %s = %q, want %q", tc.sentinels, flag, got, v)
			}
		}
		c := pod.Containers[0]
		if c.Image != "redis:7.4-alpine" || c.Command[0] != "redis-sentinel" || c.Command[1] != "/run/redis/sentinel.conf" || c.WorkingDir != "/run/redis" {
			t.Errorf("sentinel container = %s %v in %s", c.Image, c.Command, c.WorkingDir)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 26379 {
			t.Errorf("sentinel ports = %+v", c.Ports)
		}
		if mounts := c.VolumeMounts; len(mounts) != 2 || mounts[0].MountPath != "/etc/redis" || !mounts[0].ReadOnly || mounts[1].MountPath != "/run/redis" || mounts[1].ReadOnly {
			t.Errorf("sentinel mounts = %+v, want the config read-only at /etc/redis and its writable copy at /run/redis", mounts)
		}
		if sts.Spec.Template.Labels[objects.ComponentLabel] != component || sts.Spec.Template.Labels[objects.NameLabel] != "redis-sentinel" {
			t.Errorf("sentinel labels = %v, want component redis (the headless Service and NetworkPolicy select it) and name redis-sentinel", sts.Spec.Template.Labels)
		}
		podtest.Restricted(t, "sentinel", pod, uid)
		podtest.Restricted(t, "sentinel topology init", corev1.PodSpec{SecurityContext: pod.SecurityContext, Containers: pod.InitContainers, AutomountServiceAccountToken: pod.AutomountServiceAccountToken}, uid)
		wantPreferredSpread(t, pod, "redis-sentinel")
	}
}

func TestReplicatedRedis_ServicesPolicyAndBudgets(t *testing.T) {
	as, _ := haAuthService()
	h := headlessService(as)
	if h.Spec.ClusterIP != corev1.ClusterIPNone || !h.Spec.PublishNotReadyAddresses || len(h.Spec.Ports) != 2 {
		t.Errorf("headless Service = %+v, want no cluster IP, not-ready addresses published, ports 6379 and 26379", h.Spec)
	}
	if h.Spec.Selector[objects.ComponentLabel] != component || h.Spec.Selector[objects.InstanceLabel] != "auth" || h.Spec.Selector[objects.NameLabel] != "" {
		t.Errorf("headless selector = %v, want the Redis and the Sentinel pods", h.Spec.Selector)
	}
	s := sentinelService(as)
	if s.Name != "auth-redis-sentinel" || s.Spec.Ports[0].Port != 26379 || s.Spec.Selector[objects.NameLabel] != "redis-sentinel" {
		t.Errorf("Sentinel Service = %s %+v", s.Name, s.Spec)
	}
	if !s.Spec.PublishNotReadyAddresses {
		t.Error("the Sentinel Service routes to ready Sentinels only: while the primary is down none is ready, and the auth servers could not ask for its successor")
	}
	np := replicatedNetworkPolicy(as)
	if np.Spec.PodSelector.MatchLabels[objects.ComponentLabel] != component || len(np.Spec.Ingress) != 1 {
		t.Fatalf("NetworkPolicy = %+v", np.Spec)
	}
	var from []string
	for _, p := range np.Spec.Ingress[0].From {
		if p.NamespaceSelector != nil || p.IPBlock != nil {
			t.Errorf("peer %+v reaches beyond this AuthService's pods", p)
		}
		from = append(from, p.PodSelector.MatchLabels[objects.NameLabel]+"/"+p.PodSelector.MatchLabels[objects.ComponentLabel])
	}
	slices.Sort(from)
	if want := []string{"/redis", "authserver-issuer/", "authserver/"}; !slices.Equal(from, want) {
		t.Errorf("NetworkPolicy peers = %v, want Redis and Sentinel pods, the verifier and the issuer", from)
	}
	if len(np.Spec.Ingress[0].Ports) != 2 {
		t.Errorf("NetworkPolicy ports = %+v, want 6379 and 26379", np.Spec.Ingress[0].Ports)
	}
	for name, app := range map[string]string{"auth-redis": "redis", "auth-redis-sentinel": "redis-sentinel"} {
		pdb := podDisruptionBudget(as, name, app)
		if pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels[objects.NameLabel] != app {
			t.Errorf("PDB %s = %+v", name, pdb.Spec)
		}
	}
}

func TestRolledOutWithSentinels(t *testing.T) {
	d := func(master string, replicas, updated, total int32) *appsv1.Deployment {
		dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
		dep.Spec.Template.Spec.Containers = []corev1.Container{{Env: []corev1.EnvVar{{Name: "AUTHSERVER_REDIS_MASTER_NAME", Value: master}}}}
		dep.Status = appsv1.DeploymentStatus{UpdatedReplicas: updated, Replicas: total}
		return dep
	}
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		want bool
	}{
		{"rolled out", d("auth", 2, 2, 2), true},
		{"old pods left", d("auth", 2, 2, 3), false},
		{"still rolling", d("auth", 2, 1, 2), false},
		{"not on Sentinels", d("", 2, 2, 2), false},
	} {
		if got := rolledOutWithSentinels(tc.d, "auth"); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
