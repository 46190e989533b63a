package managedredis

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

// Paths and names of the replicated managed Redis's pods.
const (
	appSentinel = "redis-sentinel"
	// runtimeConfDir is the pod's writable configuration, written by the topology init
	// step and rewritten by Redis and Sentinel themselves (CONFIG REWRITE) on a failover.
	runtimeConfDir      = "/run/redis"
	sentinelPortName    = "sentinel"
	hostnameTopologyKey = "kubernetes.io/hostname"
)

// topologyInitResources are the topology init container's: a short-lived Go command that
// asks a few peers, writes one file and, in a Redis pod, copies itself (some 70 MB, through
// the page cache, which the limit counts) for the start gate. Requests let the scheduler
// count it; the limit keeps a misbehaving one from taking the node's memory.
var topologyInitResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("160Mi")},
}

// sentinelResources are the Sentinel container's: a Sentinel holds the topology of one
// primary, some megabytes, whatever the size of the data Redis holds.
var sentinelResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
}

// podHost is the stable DNS name of one pod of a StatefulSet governed by the headless
// Service; in a pod template, pod is "$(POD_NAME)", which the kubelet expands.
func podHost(as *authv1alpha1.AuthService, pod string) string {
	return fmt.Sprintf("%s.%s.%s.svc", pod, as.RedisHeadlessName(), as.Namespace)
}

// memberAddrs are host:port of every pod of the StatefulSet set with n pods.
func memberAddrs(as *authv1alpha1.AuthService, set string, n int32, port int) string {
	addrs := make([]string, 0, n)
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("%s:%d", podHost(as, fmt.Sprintf("%s-%d", set, i)), port))
	}
	return strings.Join(addrs, ",")
}

// haSelector selects the Redis and the Sentinel pods by the labels they share: the headless
// Service and the NetworkPolicy select both with it.
func haSelector(as *authv1alpha1.AuthService) map[string]string {
	return map[string]string{objects.InstanceLabel: as.Name, objects.ComponentLabel: component}
}

// The Redis container's start gate: the init step copies the auth server's binary (static,
// so it runs in any Redis image) into an emptyDir, and the Redis container runs its
// redis-topology before every start of redis-server. A container the kubelet restarts then
// decides again whom it follows: a primary that crashed waits for the Sentinels to promote
// a replica instead of taking writes a failover would drop.
const (
	redisToolsDir = "/run/redis-tools"
	redisGate     = redisToolsDir + "/authserver"
	// recordFile is where a Redis pod records how far its data goes (redis-probe), on its
	// volume; electingFile says its start gate is electing the primary.
	recordFile   = dataDir + "/topology-record"
	electingFile = runtimeConfDir + "/electing"
)

// topologyArgs are the arguments of `authserver redis-topology` for a pod of role (redis or
// sentinel) listening on port, writing its configuration to out.
func topologyArgs(as *authv1alpha1.AuthService, h HighAvailability, role string, port int, out string) []string {
	args := []string{
		"redis-topology",
		"--role", role,
		"--self", fmt.Sprintf("%s:%d", podHost(as, "$(POD_NAME)"), port),
		"--redis-addrs", memberAddrs(as, as.RedisName(), h.Replicas, Port),
		"--sentinel-addrs", memberAddrs(as, as.RedisSentinelName(), h.Sentinels, redisconf.SentinelPort),
		"--master-name", MasterName(as),
		"--password-file", confDir + "/password",
		"--out", out,
		"--quorum", strconv.Itoa(int(h.Quorum())),
	}
	if role == "redis" {
		// A Redis pod asks Redis as the administrator and the Sentinels as the auth servers.
		return append(args, "--base", confDir+"/redis.conf",
			"--sentinel-username", redisconf.AuthServerUser, "--sentinel-password-file", confDir+"/authserver-password")
	}
	// A Sentinel pod asks the Sentinels as their administrator and Redis as its Sentinel user.
	return append(args, "--down-after", redisconf.DownAfter.String(), "--failover-timeout", redisconf.FailoverTimeout.String(),
		"--redis-username", redisconf.SentinelUser, "--users-file", confDir+"/sentinel-users.conf")
}

// podNameEnv gives a container its pod's name, which the topology arguments expand.
var podNameEnv = []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
	FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
}}}

// topologyInit is the init container that writes the pod's configuration after asking the
// Sentinels, else the running Redis pods, who the primary is (authserver redis-topology):
// a Go command of the auth-server image, so no shell is needed in either image. For a
// Redis pod it also installs the start gate.
func topologyInit(as *authv1alpha1.AuthService, h HighAvailability, image, role string, port int, out string) corev1.Container {
	args := append([]string{"/authserver"}, topologyArgs(as, h, role, port, out)...)
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: confDir, ReadOnly: true},
		{Name: "runtime-config", MountPath: runtimeConfDir},
	}
	if role == "redis" {
		args = append(args, "--install", redisGate)
		mounts = append(mounts, corev1.VolumeMount{Name: "redis-tools", MountPath: redisToolsDir})
	}
	return corev1.Container{
		Name:            "topology",
		Image:           image,
		Command:         args,
		Env:             podNameEnv,
		VolumeMounts:    mounts,
		Resources:       *topologyInitResources.DeepCopy(),
		SecurityContext: objects.RestrictedContainerSecurityContext(),
	}
}

// redisToolsVolume holds the start gate the init step installs.
func redisToolsVolume() corev1.Volume {
	return corev1.Volume{Name: "redis-tools", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("128Mi"))},
	}}
}

// preferSpreadOverNodes keeps pods of one app on different nodes when the scheduler can,
// so a node's loss takes one of them.
func preferSpreadOverNodes(as *authv1alpha1.AuthService, app string) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, app)},
				TopologyKey:   hostnameTopologyKey,
			},
		}},
	}}
}

// runtimeConfigVolume holds the pod's writable configuration (redis.conf, sentinel.conf) in
// memory. Redis and Sentinel fsync it on every rewrite (a Sentinel on each peer it learns of,
// on the event loop): on a busy disk that stall can pass Sentinel's 2 s TILT trigger, after
// which it refuses to fail over for 30 s. The file outlives a container restart in the pod,
// and a new pod writes it again from its init step, so it needs no disk.
func runtimeConfigVolume() corev1.Volume {
	return corev1.Volume{Name: "runtime-config", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi"))},
	}}
}

// replicatedStatefulSet is the replicated Redis: pod 0 is the primary of a first start, every
// other pod replicates whichever primary the Sentinels name. Its data volumes are those of
// the single-pod StatefulSet (data-NAME-redis-N), so pod 0 keeps its data across a switch.
func replicatedStatefulSet(as *authv1alpha1.AuthService, h HighAvailability, confVersion, image string) *appsv1.StatefulSet {
	template := podTemplate(as, confVersion)
	spec := &template.Spec
	spec.Volumes = []corev1.Volume{
		configVolume(as),
		runtimeConfigVolume(),
		redisToolsVolume(),
	}
	runtimeConf := runtimeConfDir + "/redis.conf"
	spec.InitContainers = []corev1.Container{topologyInit(as, h, image, "redis", Port, runtimeConf)}
	c := &spec.Containers[0]
	// redis-server with the runtime configuration, behind the start gate.
	server := append([]string{c.Command[0], runtimeConf}, c.Command[2:]...)
	// The start gate, unlike the init step, elects the primary when nobody names one (every
	// pod restarted): it runs in the container whose readiness lets the next pod start.
	gate := append([]string{redisGate}, topologyArgs(as, h, "redis", Port, runtimeConf)...)
	gate = append(gate, "--record-file", recordFile, "--data-dir", dataDir, "--electing-file", electingFile)
	c.Command = append(append(gate, "--exec", "--"), server...)
	c.ReadinessProbe = recordingReadiness()
	c.Env = podNameEnv
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "config", MountPath: confDir, ReadOnly: true},
		{Name: "runtime-config", MountPath: runtimeConfDir},
		{Name: "data", MountPath: dataDir},
		{Name: "redis-tools", MountPath: redisToolsDir, ReadOnly: true},
	}
	spec.Affinity = preferSpreadOverNodes(as, appRedis)
	sts := statefulSet(as, template)
	sts.Spec.Replicas = ptr.To(h.Replicas)
	sts.Spec.ServiceName = as.RedisHeadlessName()
	return sts
}

// sentinelStatefulSet runs the Sentinels from the Redis image. They keep their state in an
// emptyDir: a Sentinel that restarts learns the topology again from the others (or, when
// every one restarts, from the running primary) through its init step.
func sentinelStatefulSet(as *authv1alpha1.AuthService, h HighAvailability, confVersion, image string) *appsv1.StatefulSet {
	managed := Spec(as)
	redisImage := managed.Image
	l := objects.Labels(as, appSentinel, component)
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisSentinelName(), Namespace: as.Namespace, Labels: l},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(h.Sentinels),
			ServiceName:         as.RedisHeadlessName(),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: objects.Selector(as, appSentinel)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      l,
					Annotations: map[string]string{ConfigChecksumAnnotation: confVersion, ACLAnnotation: "true"},
				},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              objects.RestrictedPodSecurityContext(uid),
					Affinity:                     preferSpreadOverNodes(as, appSentinel),
					InitContainers:               []corev1.Container{topologyInit(as, h, image, "sentinel", redisconf.SentinelPort, runtimeConfDir+"/sentinel.conf")},
					Containers: []corev1.Container{{
						Name:  "sentinel",
						Image: redisImage,
						// Sentinel rewrites its file as the topology changes, and writes
						// beside it: both live in the writable emptyDir.
						Command:    []string{"redis-sentinel", runtimeConfDir + "/sentinel.conf", "--port", strconv.Itoa(redisconf.SentinelPort)},
						WorkingDir: runtimeConfDir,
						Ports:      []corev1.ContainerPort{{Name: sentinelPortName, ContainerPort: redisconf.SentinelPort, Protocol: corev1.ProtocolTCP}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: confDir, ReadOnly: true},
							{Name: "runtime-config", MountPath: runtimeConfDir},
						},
						Resources:       *sentinelResources.DeepCopy(),
						LivenessProbe:   liveness(sentinelPortName),
						ReadinessProbe:  execReadiness(sentinelReadinessScript(MasterName(as))),
						SecurityContext: objects.RestrictedContainerSecurityContext(),
					}},
					Volumes: []corev1.Volume{
						sentinelConfigVolume(as),
						runtimeConfigVolume(),
					},
				},
			},
		},
	}
}

// headlessService publishes every Redis and Sentinel pod's address, ready or not: a
// starting pod's init step must reach its peers before any of them is ready.
func headlessService(as *authv1alpha1.AuthService) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisHeadlessName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 haSelector(as),
			Ports: []corev1.ServicePort{
				{Name: "redis", Port: Port, TargetPort: intstr.FromInt32(Port), Protocol: corev1.ProtocolTCP},
				{Name: sentinelPortName, Port: redisconf.SentinelPort, TargetPort: intstr.FromInt32(redisconf.SentinelPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// sentinelService is what the auth servers connect to: any Sentinel names the primary. It
// routes to every running Sentinel, ready or not: a Sentinel is not ready while the primary
// is down, which is when the auth servers must ask one for the primary it promotes.
func sentinelService(as *authv1alpha1.AuthService) *corev1.Service {
	s := objects.ClusterService(as, as.RedisSentinelName(), appSentinel, component, sentinelPortName, redisconf.SentinelPort)
	s.Spec.PublishNotReadyAddresses = true
	return s
}

// replicatedNetworkPolicy lets the Redis and Sentinel pods reach each other (replication,
// monitoring, the Sentinels' gossip) and, from outside, only this AuthService's verifier
// and issuer pods.
func replicatedNetworkPolicy(as *authv1alpha1.AuthService) *networkingv1.NetworkPolicy {
	redis, sentinel := intstr.FromInt32(Port), intstr.FromInt32(redisconf.SentinelPort)
	ports := []networkingv1.NetworkPolicyPort{
		{Protocol: ptr.To(corev1.ProtocolTCP), Port: &redis},
		{Protocol: ptr.To(corev1.ProtocolTCP), Port: &sentinel},
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, appRedis, component)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: haSelector(as)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: haSelector(as)}},
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppVerifier)}},
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppIssuer)}},
				},
				Ports: ports,
			}},
		},
	}
}

// podDisruptionBudget lets a drain take one pod of the Redis or the Sentinels at a time:
// the others keep a primary, a replica to acknowledge logouts and a Sentinel majority.
func podDisruptionBudget(as *authv1alpha1.AuthService, name, app string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: as.Namespace, Labels: objects.Labels(as, app, component)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: objects.Selector(as, app)},
		},
	}
}
