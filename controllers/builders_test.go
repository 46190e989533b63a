package controllers

import (
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// These build the desired workloads, Services, policies and RBAC from values alone; no
// API server is involved. They assert the fields that matter, not a snapshot.

func builderAuthService() *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "auth"}}
}

// wantRestricted checks the pod and container security contexts of the restricted Pod
// Security Standard, with uid the fixed user.
func wantRestrictedContexts(t *testing.T, pod corev1.PodSpec, uid int64) {
	t.Helper()
	p := pod.SecurityContext
	if p == nil || !ptr.Deref(p.RunAsNonRoot, false) || ptr.Deref(p.RunAsUser, 0) != uid || ptr.Deref(p.FSGroup, 0) != uid ||
		p.SeccompProfile == nil || p.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", p)
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		s := c.SecurityContext
		if s == nil || ptr.Deref(s.AllowPrivilegeEscalation, true) || !ptr.Deref(s.ReadOnlyRootFilesystem, false) ||
			!ptr.Deref(s.RunAsNonRoot, false) || s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s security context %+v", c.Name, s)
		}
	}
}

// wantSelects checks that selector picks the pods of template and names the app.
func wantSelects(t *testing.T, selector *metav1.LabelSelector, template corev1.PodTemplateSpec, app string) {
	t.Helper()
	if selector == nil || selector.MatchLabels["app.kubernetes.io/name"] != app {
		t.Fatalf("selector %v does not name app %s", selector, app)
	}
	for k, v := range selector.MatchLabels {
		if template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, template.Labels)
		}
	}
}

func volumeNamed(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func TestAuthserverDeployments_VerifierAndIssuer(t *testing.T) {
	as := builderAuthService()
	as.Spec.Server.Replicas = ptr.To[int32](3)
	as.Spec.Issuance.Replicas = ptr.To[int32](2)
	as.Spec.Server.NodeSelector = map[string]string{"pool": "auth"}
	as.Spec.Server.PriorityClassName = "critical"
	as.Spec.Server.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	as.Spec.Server.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.ScheduleAnyway}}
	redis := redisConnection{
		addresses: []string{"auth-redis:6379"}, password: &authv1alpha1.SecretKeyReference{Name: "redis-pass", Key: "pw"},
		passwordChecksum: "sum1",
	}
	for _, tc := range []struct {
		name, wantName, app, role, serviceAccount string
		d                                         *appsv1.Deployment
		replicas                                  int32
		keysFromSecret, spread                    bool
	}{
		{"verifier", "auth-authserver", objects.AppVerifier, roleVerifier, "", serverDeployment(as, redis, testImage, 0), 3, false, true},
		{"issuer", "auth-issuer", objects.AppIssuer, roleIssuer, "auth-issuer", issuerDeployment(as, redis, testImage), 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			pod := d.Spec.Template.Spec
			if d.Name != tc.wantName || d.Namespace != "prod" || ptr.Deref(d.Spec.Replicas, 0) != tc.replicas {
				t.Errorf("Deployment %s/%s with %v replicas", d.Namespace, d.Name, d.Spec.Replicas)
			}
			wantSelects(t, d.Spec.Selector, d.Spec.Template, tc.app)
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
				t.Errorf("strategy %+v: a rollout must never take a serving pod away first", d.Spec.Strategy)
			}
			if pod.ServiceAccountName != tc.serviceAccount || ptr.Deref(pod.AutomountServiceAccountToken, true) != (tc.serviceAccount != "") {
				t.Errorf("service account %q, token mounted %v", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
			}
			if !maps.Equal(pod.NodeSelector, as.Spec.Server.NodeSelector) || pod.PriorityClassName != "critical" ||
				len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "pull" {
				t.Errorf("placement of spec.server not carried: %v %q %v", pod.NodeSelector, pod.PriorityClassName, pod.ImagePullSecrets)
			}
			if got := len(pod.TopologySpreadConstraints) == 1; got != tc.spread {
				t.Errorf("spread constraints %v", pod.TopologySpreadConstraints)
			}
			wantRestrictedContexts(t, pod, serverUID)
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Image != testImage || !slices.Equal(c.Command, []string{"/authserver", "serve"}) {
				t.Errorf("container runs %s %v", c.Image, c.Command)
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if !maps.Equal(ports, map[string]int32{"http": serverContainerPort, serverAdminPortName: serverAdminPort}) {
				t.Errorf("ports %v", ports)
			}
			for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.StrVal != serverAdminPortName {
					t.Errorf("probe for %s: %+v", path, probe)
				}
			}
			env := envMap(c)
			if env["AUTHSERVER_ROLE"] != tc.role || env["AUTHSERVER_REDIS_ADDRS"] != "auth-redis:6379" ||
				env["AUTHSERVER_REDIS_PASSWORD_FILE"] != redisPasswordFile {
				t.Errorf("env %v", env)
			}
			keys := volumeNamed(pod, "keys")
			switch {
			case keys == nil:
				t.Fatal("no keys volume")
			case tc.keysFromSecret && (keys.Secret == nil || keys.Secret.SecretName != "auth-signing-keys"):
				t.Errorf("issuer keys volume %+v, want the signing-key Secret", keys.VolumeSource)
			case !tc.keysFromSecret && (keys.Secret == nil || keys.Secret.SecretName != as.PublicKeysSecretName() || keys.ConfigMap != nil):
				t.Errorf("verifier keys volume %+v, want the public keys Secret only", keys.VolumeSource)
			}
			if pw := volumeNamed(pod, "redis-password"); pw == nil || pw.Secret == nil || pw.Secret.SecretName != "redis-pass" ||
				len(pw.Secret.Items) != 1 || pw.Secret.Items[0].Key != "pw" {
				t.Errorf("password volume %+v", pw)
			}
			for _, m := range c.VolumeMounts {
				if !m.ReadOnly {
					t.Errorf("mount %s is writable", m.Name)
				}
			}
			if d.Spec.Template.Annotations[RedisPasswordChecksumAnnotation] != "sum1" {
				t.Errorf("pod annotations %v: a new password must roll the pods", d.Spec.Template.Annotations)
			}
		})
	}
}

func TestAuthserverDeployment_NoPasswordNoVolumeNoAnnotation(t *testing.T) {
	d := serverDeployment(builderAuthService(), redisConnection{addresses: []string{"r:6379"}}, testImage, 0)
	pod := d.Spec.Template.Spec
	if len(pod.Volumes) != 1 || volumeNamed(pod, "keys") == nil || d.Spec.Template.Annotations != nil {
		t.Errorf("volumes %v, annotations %v", pod.Volumes, d.Spec.Template.Annotations)
	}
	if _, ok := envMap(pod.Containers[0])["AUTHSERVER_REDIS_PASSWORD_FILE"]; ok {
		t.Error("a password file is named without a password")
	}
}

func TestClusterServices_SendThePortToTheNamedContainerPort(t *testing.T) {
	custom := builderAuthService()
	custom.Spec.Server.Port = 9000
	for _, tc := range []struct {
		name, wantName, app, portName string
		s                             *corev1.Service
		port                          int32
	}{
		{"verifier, default port", "auth-authserver", objects.AppVerifier, "http", serverService(builderAuthService()), defaultServerPort},
		{"verifier, spec.server.port", "auth-authserver", objects.AppVerifier, "http", serverService(custom), 9000},
		{"issuer", "auth-issuer", objects.AppIssuer, "http", issuerService(builderAuthService()), issuerServicePort},
		{"single Redis", "auth-redis", "redis", "redis", redisService(builderAuthService()), redisPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if s.Name != tc.wantName || s.Namespace != "prod" || s.Spec.Selector["app.kubernetes.io/name"] != tc.app ||
				s.Spec.Selector["app.kubernetes.io/instance"] != "auth" {
				t.Errorf("Service %s/%s selects %v", s.Namespace, s.Name, s.Spec.Selector)
			}
			if len(s.Spec.Ports) != 1 {
				t.Fatalf("ports %v", s.Spec.Ports)
			}
			p := s.Spec.Ports[0]
			if p.Port != tc.port || p.TargetPort != intstr.FromString(tc.portName) || p.Protocol != corev1.ProtocolTCP {
				t.Errorf("port %+v, want %d to %s", p, tc.port, tc.portName)
			}
		})
	}
}

func TestRedisNetworkPolicy_OnlyTheAuthServersReachRedis(t *testing.T) {
	np := redisNetworkPolicy(builderAuthService())
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
	if len(rule.Ports) != 1 || rule.Ports[0].Port.IntValue() != redisPort || ptr.Deref(rule.Ports[0].Protocol, "") != corev1.ProtocolTCP {
		t.Errorf("ports %v", rule.Ports)
	}
}

func TestPodDisruptionBudget_MaxUnavailableFromTheSpec(t *testing.T) {
	set := builderAuthService()
	set.Spec.Server.PodDisruptionBudget.MaxUnavailable = ptr.To(intstr.FromString("50%"))
	for _, tc := range []struct {
		name string
		as   *authv1alpha1.AuthService
		want intstr.IntOrString
	}{
		{"default", builderAuthService(), intstr.FromInt32(1)},
		{"set", set, intstr.FromString("50%")},
	} {
		pdb := podDisruptionBudget(tc.as, tc.as.IssuerName(), objects.AppIssuer, componentIssuer)
		if pdb.Name != "auth-issuer" || pdb.Labels["app.kubernetes.io/component"] != componentIssuer {
			t.Errorf("%s: PDB %s labels %v", tc.name, pdb.Name, pdb.Labels)
		}
		if pdb.Spec.Selector == nil || !maps.Equal(pdb.Spec.Selector.MatchLabels, objects.Selector(tc.as, objects.AppIssuer)) {
			t.Errorf("%s: selector %v", tc.name, pdb.Spec.Selector)
		}
		if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != tc.want || pdb.Spec.MinAvailable != nil {
			t.Errorf("%s: maxUnavailable %v minAvailable %v, want %v", tc.name, pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable, tc.want)
		}
	}
}

func TestSingleRedis_PodStatefulSetAndDeployment(t *testing.T) {
	as := builderAuthService()
	as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{AppendFsync: "always"}
	as.Spec.Redis.Managed.Persistence.StorageClassName = ptr.To("fast")
	as.Spec.Redis.Managed.Persistence.Size = ptr.To(resource.MustParse("2Gi"))
	template := redisPodTemplate(as, "conf-v7")

	t.Run("pod", func(t *testing.T) {
		pod := template.Spec
		if template.Annotations[RedisConfigChecksumAnnotation] != "conf-v7" {
			t.Errorf("annotations %v: a new redis.conf must roll the pod", template.Annotations)
		}
		if ptr.Deref(pod.AutomountServiceAccountToken, true) {
			t.Error("Redis mounts a ServiceAccount token")
		}
		wantRestrictedContexts(t, pod, redisUID)
		c := pod.Containers[0]
		if c.Image != defaultRedisImage || flagValue(c.Command, "--appendfsync") != "always" || flagValue(c.Command, "--appendonly") != "yes" ||
			flagValue(c.Command, "--port") != "6379" || flagValue(c.Command, "--dir") != redisDataDir {
			t.Errorf("container %s runs %v", c.Image, c.Command)
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "redis" || c.Ports[0].ContainerPort != redisPort {
			t.Errorf("ports %v", c.Ports)
		}
		if probe := c.LivenessProbe; probe == nil || probe.TCPSocket == nil || probe.TCPSocket.Port != intstr.FromString("redis") {
			t.Errorf("liveness %+v", probe)
		}
		if probe := c.ReadinessProbe; probe == nil || probe.Exec == nil || strings.Join(probe.Exec.Command, " ") != "sh -c "+redisReadinessScript {
			t.Errorf("readiness %+v, want the exec probe of redis_probes.go", probe)
		}
		if conf := volumeNamed(pod, "config"); conf == nil || conf.Secret == nil || len(conf.Secret.Items) != 2 || conf.Secret.Items[1].Path != "password" {
			t.Errorf("config volume %+v: the readiness probe reads the password from it", conf)
		}
		if conf := volumeNamed(pod, "config"); conf == nil || conf.Secret == nil || conf.Secret.SecretName != "auth-redis" {
			t.Errorf("config volume %+v", conf)
		}
	})

	t.Run("StatefulSet", func(t *testing.T) {
		sts := redisStatefulSet(as, template)
		if sts.Name != "auth-redis" || sts.Spec.ServiceName != "auth-redis" || ptr.Deref(sts.Spec.Replicas, 0) != 1 {
			t.Errorf("StatefulSet %s service %s replicas %v", sts.Name, sts.Spec.ServiceName, sts.Spec.Replicas)
		}
		wantSelects(t, sts.Spec.Selector, sts.Spec.Template, "redis")
		if len(sts.Spec.VolumeClaimTemplates) != 1 {
			t.Fatalf("claims %v", sts.Spec.VolumeClaimTemplates)
		}
		claim := sts.Spec.VolumeClaimTemplates[0]
		size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
		if claim.Name != "data" || size.String() != "2Gi" || ptr.Deref(claim.Spec.StorageClassName, "") != "fast" ||
			!slices.Equal(claim.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("claim %s %s class %v modes %v", claim.Name, size.String(), claim.Spec.StorageClassName, claim.Spec.AccessModes)
		}
		if volumeNamed(sts.Spec.Template.Spec, "data") != nil {
			t.Error("the data volume is a pod volume as well as a claim")
		}
	})

	t.Run("Deployment", func(t *testing.T) {
		d := redisDeployment(as, template)
		if d.Name != "auth-redis" || ptr.Deref(d.Spec.Replicas, 0) != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("Deployment %s replicas %v strategy %v: two Redis must never run at once", d.Name, d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		wantSelects(t, d.Spec.Selector, d.Spec.Template, "redis")
		if data := volumeNamed(d.Spec.Template.Spec, "data"); data == nil || data.EmptyDir == nil {
			t.Errorf("data volume %+v, want an emptyDir", data)
		}
		if volumeNamed(template.Spec, "data") != nil {
			t.Error("redisDeployment changed the template it was given")
		}
	})
}

func TestIssuerRBAC_LeastPrivilege(t *testing.T) {
	as := builderAuthService()
	sa := issuerServiceAccount(as)
	if sa.Name != "auth-issuer" || sa.Namespace != "prod" || !ptr.Deref(sa.AutomountServiceAccountToken, false) {
		t.Errorf("ServiceAccount %s/%s automount %v", sa.Namespace, sa.Name, sa.AutomountServiceAccountToken)
	}
	role := issuerRole(as)
	granted := map[string][]string{}
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || len(r.ResourceNames) != 1 || len(r.Resources) != 1 {
			t.Errorf("rule %+v is not narrowed to one named object", r)
			continue
		}
		granted[r.Resources[0]+"/"+r.ResourceNames[0]] = r.Verbs
		if slices.Contains(r.Verbs, "delete") || slices.Contains(r.Verbs, "*") {
			t.Errorf("rule %+v may delete", r)
		}
	}
	want := map[string][]string{
		"secrets/auth-signing-keys":                   {"get", "list", "watch"},
		"configmaps/" + as.UserLogoutsConfigMapName(): {"get", "list", "watch", "patch"},
		"configmaps/" + as.StoreStateConfigMapName():  {"get", "update", "patch"},
	}
	if !maps.EqualFunc(granted, want, slices.Equal[[]string]) {
		t.Errorf("role grants %v, want %v", granted, want)
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: "prod"}
	rb := issuerRoleBinding(as)
	if rb.Namespace != "prod" || rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) ||
		!slices.Equal(rb.Subjects, []rbacv1.Subject{subject}) {
		t.Errorf("RoleBinding %+v", rb)
	}
	crb := issuerClusterRoleBinding(as)
	if crb.Namespace != "" || crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authv1alpha1.IssuerClusterRoleName}) ||
		!slices.Equal(crb.Subjects, []rbacv1.Subject{subject}) {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
	if crb.Name != as.IssuerClusterRoleBindingName() || crb.Labels[authv1alpha1.AuthServiceNamespaceLabel] != "prod" || crb.Labels["auth.hiringo.tech/authservice"] != "auth" {
		t.Errorf("ClusterRoleBinding %s labels %v: the finalizer finds it by them", crb.Name, crb.Labels)
	}
	cm := userLogoutsConfigMap(as)
	if cm.Name != as.UserLogoutsConfigMapName() || cm.Data != nil || cm.BinaryData != nil {
		t.Errorf("user-logouts ConfigMap %s carries %v: the apply must claim none of its entries", cm.Name, cm.Data)
	}
}
