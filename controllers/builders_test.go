package controllers

import (
	"maps"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/serverenv"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
)

// These build the desired workloads, Services, policies and RBAC from values alone; no
// API server is involved. They assert the fields that matter, not a snapshot.

func builderAuthService() *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "auth"}}
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
		{"verifier", "auth-authserver", objects.AppVerifier, serverenv.RoleVerifier, "", serverDeployment(as, redis, testImage, 0), 3, false, true},
		{"issuer", "auth-issuer", objects.AppIssuer, serverenv.RoleIssuer, "auth-issuer", issuerDeployment(as, redis, testImage), 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			pod := d.Spec.Template.Spec
			if d.Name != tc.wantName || d.Namespace != "prod" || ptr.Deref(d.Spec.Replicas, 0) != tc.replicas {
				t.Errorf("Deployment %s/%s with %v replicas", d.Namespace, d.Name, d.Spec.Replicas)
			}
			podtest.Selects(t, d.Spec.Selector, d.Spec.Template, tc.app)
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
			podtest.RestrictedContexts(t, pod, serverUID)
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
			keys := podtest.Volume(pod, "keys")
			switch {
			case keys == nil:
				t.Fatal("no keys volume")
			case tc.keysFromSecret && (keys.Secret == nil || keys.Secret.SecretName != "auth-signing-keys"):
				t.Errorf("issuer keys volume %+v, want the signing-key Secret", keys.VolumeSource)
			case !tc.keysFromSecret && (keys.Secret == nil || keys.Secret.SecretName != as.PublicKeysSecretName() || keys.ConfigMap != nil):
				t.Errorf("verifier keys volume %+v, want the public keys Secret only", keys.VolumeSource)
			}
			if pw := podtest.Volume(pod, "redis-password"); pw == nil || pw.Secret == nil || pw.Secret.SecretName != "redis-pass" ||
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
	if len(pod.Volumes) != 1 || podtest.Volume(pod, "keys") == nil || d.Spec.Template.Annotations != nil {
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
