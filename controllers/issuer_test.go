package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// can asks the API server's RBAC authorizer whether the issuer's ServiceAccount may do a
// thing: the Role, RoleBinding and ClusterRoleBinding the operator wrote, judged for real.
func can(t *testing.T, ns, sa string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + ns + ":" + sa,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	if err := k8sClient.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed
}

func TestIssuer_IsWiredFromTheSpecWithLeastPrivilege(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Issuance.Clients = []authv1alpha1.IssuanceClient{
			{Namespace: "login", ServiceAccountName: "login-service"},
			{Namespace: ns, ServiceAccountName: "identity"},
		}
		as.Spec.Issuance.Replicas = ptr.To[int32](3)
		as.Spec.Issuance.SingleSession = true
		as.Spec.Tokens.Audiences = []authv1alpha1.Audience{"api.example.com", "web"}
		as.Spec.Tokens.RefreshLifetime = metav1.Duration{Duration: 24 * 3600e9}
		as.Spec.Server.NodeSelector = map[string]string{"pool": "auth"}
	})
	waitCondition(t, ns, "auth", authv1alpha1.IssuerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonProgressing)
	as = get(t, ns, "auth", as)

	for _, part := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"its ServiceAccount, Role and RoleBinding, its ConfigMaps, its ClusterRoleBinding and the finalizer", func(t *testing.T) {
			sa := get(t, ns, "auth-issuer", &corev1.ServiceAccount{})
			wantLabels(t, sa, as, "authserver-issuer", "issuer")
			if !ptr.Deref(sa.AutomountServiceAccountToken, false) {
				t.Error("the issuer's ServiceAccount does not mount its token: the issuer cannot reach the API")
			}
			role := get(t, ns, "auth-issuer", &rbacv1.Role{})
			wantLabels(t, role, as, "authserver-issuer", "issuer")
			if len(role.Rules) != 3 || !slices.Equal(role.Rules[0].Resources, []string{"secrets"}) ||
				!slices.Equal(role.Rules[0].ResourceNames, []string{"auth-signing-keys"}) || !slices.Equal(role.Rules[0].Verbs, []string{"get", "list", "watch"}) ||
				!slices.Equal(role.Rules[1].Resources, []string{"configmaps"}) ||
				!slices.Equal(role.Rules[1].ResourceNames, []string{"auth-user-logouts"}) || !slices.Equal(role.Rules[1].Verbs, []string{"get", "list", "watch", "patch"}) ||
				!slices.Equal(role.Rules[2].Resources, []string{"configmaps"}) ||
				!slices.Equal(role.Rules[2].ResourceNames, []string{"auth-store-state"}) || !slices.Equal(role.Rules[2].Verbs, []string{"get", "update", "patch"}) {
				t.Errorf("issuer Role rules = %+v, want get/list/watch of auth-signing-keys, get/list/watch/patch of auth-user-logouts and get/update/patch of auth-store-state only", role.Rules)
			}
			if cm := get(t, ns, "auth-store-state", &corev1.ConfigMap{}); len(cm.Data) != 0 || cm.Labels[objects.ManagedByLabel] != objects.ManagedByValue || !metav1.IsControlledBy(cm, as) {
				t.Errorf("store-state ConfigMap = %+v, want it empty, labelled and owned", cm)
			}
			logouts := get(t, ns, "auth-user-logouts", &corev1.ConfigMap{})
			wantLabels(t, logouts, as, "authserver-issuer", "user-logouts")
			if len(logouts.Data) != 0 {
				t.Errorf("the user-logouts ConfigMap is created with data %v, want none", logouts.Data)
			}
			rb := get(t, ns, "auth-issuer", &rbacv1.RoleBinding{})
			wantLabels(t, rb, as, "authserver-issuer", "issuer")
			if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "auth-issuer" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "auth-issuer" || rb.Subjects[0].Namespace != ns {
				t.Errorf("issuer RoleBinding = %+v / %+v", rb.RoleRef, rb.Subjects)
			}
			crb := get(t, "", named(ns, "auth").IssuerClusterRoleBindingName(), &rbacv1.ClusterRoleBinding{})
			if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != "auth-operator-issuer" || len(crb.Subjects) != 1 ||
				crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "auth-issuer" || crb.Subjects[0].Namespace != ns {
				t.Errorf("issuer ClusterRoleBinding = %+v / %+v", crb.RoleRef, crb.Subjects)
			}
			if crb.Labels["auth.hiringo.tech/authservice"] != "auth" || crb.Labels["auth.hiringo.tech/authservice-namespace"] != ns || crb.Labels[objects.ManagedByLabel] != objects.ManagedByValue {
				t.Errorf("ClusterRoleBinding labels = %v", crb.Labels)
			}
			if len(crb.OwnerReferences) != 0 {
				t.Errorf("a cluster-scoped binding carries owner references %v, which the garbage collector would drop", crb.OwnerReferences)
			}
			if !slices.Contains(as.Finalizers, ClusterResourcesFinalizer) {
				t.Errorf("finalizers = %v, want %s", as.Finalizers, ClusterResourcesFinalizer)
			}
		}},
		{"what it may do, as the API server's authorizer judges it", func(t *testing.T) {
			for _, tc := range []struct {
				what  string
				attrs authorizationv1.ResourceAttributes
				want  bool
			}{
				{"create TokenReviews", authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}, true},
				{"watch its key Secret", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Name: "auth-signing-keys", Verb: "watch"}, true},
				{"get its key Secret", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Name: "auth-signing-keys", Verb: "get"}, true},
				{"get the Redis Secret", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Name: "auth-redis", Verb: "get"}, false},
				{"list every Secret", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Verb: "list"}, false},
				{"update its key Secret", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Name: "auth-signing-keys", Verb: "update"}, false},
				{"get a Secret elsewhere", authorizationv1.ResourceAttributes{Namespace: "default", Resource: "secrets", Name: "auth-signing-keys", Verb: "get"}, false},
				{"watch its user-logouts ConfigMap", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Name: "auth-user-logouts", Verb: "watch"}, true},
				{"mark user logouts applied", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Name: "auth-user-logouts", Verb: "patch"}, true},
				{"delete its user-logouts ConfigMap", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Name: "auth-user-logouts", Verb: "delete"}, false},
				{"patch the JWKS ConfigMap", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Name: "auth-jwks", Verb: "patch"}, false},
				{"list every ConfigMap", authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Verb: "list"}, false},
			} {
				t.Run(tc.what, func(t *testing.T) {
					if got := can(t, ns, "auth-issuer", tc.attrs); got != tc.want {
						t.Errorf("issuer may %s = %v, want %v", tc.what, got, tc.want)
					}
				})
			}
			if can(t, ns, "default", authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}) {
				t.Error("another ServiceAccount of the namespace may create TokenReviews")
			}
		}},
		{"its Deployment: the private keys, its own ServiceAccount, the issuance settings", func(t *testing.T) {
			d := get(t, ns, "auth-issuer", &appsv1.Deployment{})
			wantLabels(t, d, as, "authserver-issuer", "issuer")
			pod := d.Spec.Template.Spec
			if ptr.Deref(d.Spec.Replicas, 0) != 3 || pod.ServiceAccountName != "auth-issuer" || !ptr.Deref(pod.AutomountServiceAccountToken, false) {
				t.Errorf("replicas %d, serviceAccount %q, automount %v", ptr.Deref(d.Spec.Replicas, 0), pod.ServiceAccountName, pod.AutomountServiceAccountToken)
			}
			if sel := d.Spec.Selector.MatchLabels; sel["app.kubernetes.io/name"] != "authserver-issuer" || sel["app.kubernetes.io/instance"] != "auth" {
				t.Errorf("issuer selector = %v", sel)
			}
			verifier := get(t, ns, "auth-authserver", &appsv1.Deployment{})
			if selects(verifier.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || selects(d.Spec.Selector.MatchLabels, verifier.Spec.Template.Labels) {
				t.Error("the verifier's and the issuer's selectors reach each other's pods")
			}
			wantRestrictedWithToken(t, "issuer", pod, 65532)
			if pod.NodeSelector["pool"] != "auth" {
				t.Errorf("nodeSelector = %v, want spec.server's", pod.NodeSelector)
			}
			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			if s := vols["keys"].Secret; s == nil || s.SecretName != "auth-signing-keys" || ptr.Deref(s.DefaultMode, 0) != 0o440 {
				t.Errorf("issuer keys volume = %+v, want the Secret auth-signing-keys, mode 0440", vols["keys"])
			}
			c := pod.Containers[0]
			if c.Image != testImage || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || c.VolumeMounts[0].MountPath != "/etc/authserver/keys" || !c.VolumeMounts[0].ReadOnly {
				t.Errorf("issuer container %s ports %+v mounts %+v", c.Image, c.Ports, c.VolumeMounts)
			}
			env := envMap(c)
			for k, v := range map[string]string{
				"AUTHSERVER_ROLE":                   "issuer",
				"AUTHSERVER_ISSUER":                 "http://auth-authserver." + ns + ".svc",
				"AUTHSERVER_CLIENT_AUDIENCE":        "http://auth-authserver." + ns + ".svc",
				"AUTHSERVER_AUDIENCES":              "api.example.com,web",
				"AUTHSERVER_ACCESS_LIFETIME":        "15m0s",
				"AUTHSERVER_REFRESH_LIFETIME":       "24h0m0s",
				"AUTHSERVER_ISSUANCE_CLIENTS":       "login/login-service," + ns + "/identity",
				"AUTHSERVER_SINGLE_SESSION":         "true",
				"AUTHSERVER_KEYS_SECRET":            "auth-signing-keys",
				"AUTHSERVER_USER_LOGOUTS_CONFIGMAP": "auth-user-logouts",
				"AUTHSERVER_NAMESPACE":              ns,
				"AUTHSERVER_KEYS_DIR":               "/etc/authserver/keys",
				"AUTHSERVER_REDIS_ADDRS":            "auth-redis." + ns + ".svc:6379",
				"AUTHSERVER_REDIS_PASSWORD_FILE":    "/etc/authserver/redis/password",
				"AUTHSERVER_LISTEN":                 ":8080",
				"AUTHSERVER_STORE_STATE_CONFIGMAP":  "auth-store-state",
				"AUTHSERVER_SESSION_MAX_LIFETIME":   "2160h0m0s",
				"AUTHSERVER_REFRESH_GRACE_PERIOD":   "30s",
				"AUTHSERVER_REFRESHES_PER_MINUTE":   "10",
			} {
				if env[k] != v {
					t.Errorf("issuer env %s = %q, want %q", k, env[k], v)
				}
			}
		}},
		{"its Service and the URLs in the status", func(t *testing.T) {
			svc := get(t, ns, "auth-issuer", &corev1.Service{})
			wantLabels(t, svc, as, "authserver-issuer", "issuer")
			if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 80 || p[0].TargetPort.String() != "http" || svc.Spec.Selector["app.kubernetes.io/name"] != "authserver-issuer" {
				t.Errorf("issuer Service = %+v", svc.Spec)
			}
			if as.Status.IssuerURL != "http://auth-issuer."+ns+".svc" || as.Status.Issuer != "http://auth-authserver."+ns+".svc" {
				t.Errorf("status issuerURL %q issuer %q", as.Status.IssuerURL, as.Status.Issuer)
			}
		}},
	} {
		t.Run(part.name, part.check)
	}

	// Then, in order, as each changes what the parts above looked at.
	t.Run("a changed client list and an explicit issuer reach both roles and the status; the session lifetime and the refresh policy reach the issuer, a grace period and a limit of 0 (off) as 0", func(t *testing.T) {
		update(t, as, func(as *authv1alpha1.AuthService) {
			as.Spec.Issuance.Clients = as.Spec.Issuance.Clients[:1]
			as.Spec.Tokens.Issuer = "https://auth.example.com"
			as.Spec.Tokens.SessionMaxLifetime = metav1.Duration{Duration: 48 * time.Hour}
			as.Spec.Issuance.RefreshGracePeriod = &metav1.Duration{}
			as.Spec.Issuance.RefreshesPerMinute = ptr.To[int32](0)
		})
		poll.Until(t, waitTimeout, "new clients, issuer and session settings rolled out", func() error {
			env := envMap(get(t, ns, "auth-issuer", &appsv1.Deployment{}).Spec.Template.Spec.Containers[0])
			venv := envMap(get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Spec.Containers[0])
			st := get(t, ns, "auth", &authv1alpha1.AuthService{}).Status
			if env["AUTHSERVER_ISSUANCE_CLIENTS"] != "login/login-service" || env["AUTHSERVER_ISSUER"] != "https://auth.example.com" ||
				env["AUTHSERVER_CLIENT_AUDIENCE"] != "https://auth.example.com" || venv["AUTHSERVER_ISSUER"] != "https://auth.example.com" || st.Issuer != "https://auth.example.com" {
				return errorf("issuer clients %q iss %q audience %q, verifier iss %q, status issuer %q",
					env["AUTHSERVER_ISSUANCE_CLIENTS"], env["AUTHSERVER_ISSUER"], env["AUTHSERVER_CLIENT_AUDIENCE"], venv["AUTHSERVER_ISSUER"], st.Issuer)
			}
			if env["AUTHSERVER_SESSION_MAX_LIFETIME"] != "48h0m0s" || env["AUTHSERVER_REFRESH_GRACE_PERIOD"] != "0s" || env["AUTHSERVER_REFRESHES_PER_MINUTE"] != "0" {
				return errorf("issuer session lifetime %q, grace period %q, refreshes per minute %q", env["AUTHSERVER_SESSION_MAX_LIFETIME"],
					env["AUTHSERVER_REFRESH_GRACE_PERIOD"], env["AUTHSERVER_REFRESHES_PER_MINUTE"])
			}
			return nil
		})
	})
	t.Run("Ready waits for the issuer", func(t *testing.T) {
		markStatefulSetAvailable(t, ns, "auth-redis")
		markDeploymentAvailable(t, ns, "auth-authserver")
		if c := waitCondition(t, ns, "auth", authv1alpha1.ReadyCondition, metav1.ConditionFalse, ""); !strings.Contains(condition(c, authv1alpha1.ReadyCondition).Message, "IssuerReady") {
			t.Errorf("Ready with the issuer down = %+v", condition(c, authv1alpha1.ReadyCondition))
		}
		markDeploymentAvailable(t, ns, "auth-issuer")
		as = waitCondition(t, ns, "auth", authv1alpha1.ReadyCondition, metav1.ConditionTrue, "Ready")
		if c := condition(as, authv1alpha1.IssuerReadyCondition); !strings.Contains(c.Message, "3 of 3 issuer replicas available at http://auth-issuer."+ns+".svc") {
			t.Errorf("IssuerReady = %q", c.Message)
		}
	})
}

// selects reports whether a label selector matches a set of labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// wantRestrictedWithToken is wantRestricted for a pod that needs its ServiceAccount token.
func wantRestrictedWithToken(t *testing.T, what string, pod corev1.PodSpec, uid int64) {
	t.Helper()
	withoutToken := pod
	withoutToken.AutomountServiceAccountToken = ptr.To(false)
	podtest.Restricted(t, what, withoutToken, uid)
}

// TestOperatorRBAC_BindsOnlyTheIssuerClusterRole shows the bind permission is no way to
// escalate: as the operator's user, a binding to any other ClusterRole is refused.
func TestOperatorRBAC_BindsOnlyTheIssuerClusterRole(t *testing.T) {
	requireEnv(t)
	operator, err := client.New(operatorCfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	// Not admin or edit: without kube-controller-manager their aggregated rules are empty
	// here, and a role whose rules one holds may always be bound.
	for _, role := range []string{"cluster-admin", "system:kube-scheduler", "auth-operator-issuer"} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "escalation-" + ns + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "anyone", Namespace: ns}},
		}
		err := operator.Create(context.Background(), crb)
		if role == "auth-operator-issuer" {
			if err != nil {
				t.Errorf("the operator may not bind %s: %v", role, err)
			}
			continue
		}
		if !apierrors.IsForbidden(err) {
			t.Errorf("binding ClusterRole %s as the operator: err = %v, want Forbidden", role, err)
		}
	}
}
