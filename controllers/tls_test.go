package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/tlstest"
)

// tlsSecret is a Secret with the keys of a kubernetes.io/tls Secret, as cert-manager
// writes them; of type Opaque, so that a test can also make it lack a key.
func tlsSecret(ns, name string, leaf tlstest.Leaf, ca []byte) *corev1.Secret {
	data := map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM}
	if ca != nil {
		data["ca.crt"] = ca
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// wantCondition checks one condition of the stored AuthService.
func wantCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, says ...string) *authv1alpha1.AuthService {
	t.Helper()
	as := get(t, ns, name, &authv1alpha1.AuthService{})
	c := condition(as, typ)
	if c.Status != status || c.Reason != reason {
		t.Fatalf("%s = %s/%s %q, want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	}
	for _, s := range says {
		if !strings.Contains(c.Message, s) {
			t.Errorf("%s message %q does not say %q", typ, c.Message, s)
		}
	}
	return as
}

// TestTLS_ServesFromTheSecretAndKeepsRunningPodsOnABadOne walks spec.server.tls through
// the Secret's states: missing (TLSReady names it, nothing is rolled out), valid (both
// roles serve HTTPS on 443 from the mounted Secret, the URLs and the issuer turn https,
// status.tls shows the CA), renewed (nothing rolls: the pods reload it), invalid in each
// way (TLSReady names the Secret and the problem, status.tls and the pods stay on the
// last good certificate).
func TestTLS_ServesFromTheSecretAndKeepsRunningPodsOnABadOne(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"}
	})
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(time.Now()), nil)
	reconcileOnce(t, r, ns, "auth")
	wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable,
		"spec.server.tls.secretName names Secret auth-tls", "tls.crt and tls.key")
	as := wantCondition(t, ns, "auth", authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForTLS)
	wantCondition(t, ns, "auth", authv1alpha1.IssuerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForTLS)
	if as.Spec.Server.TLS.Port != 443 {
		t.Errorf("spec.server.tls.port defaults to %d, want 443", as.Spec.Server.TLS.Port)
	}
	if c := condition(as, authv1alpha1.ReadyCondition); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "TLSReady") {
		t.Errorf("Ready = %+v, want it to name TLSReady", c)
	}
	if !isNotFound(t, ns, "auth-authserver", &appsv1.Deployment{}) || !isNotFound(t, ns, "auth-issuer", &appsv1.Deployment{}) {
		t.Fatal("a workload was rolled out without its TLS Secret")
	}

	ca := tlstest.NewCA(t)
	names := []string{"auth-authserver." + ns + ".svc", "auth-issuer." + ns + ".svc"}
	good := ca.Issue(t, time.Now().Add(90*24*time.Hour), names...)
	secret := tlsSecret(ns, "auth-tls", good, ca.PEM)
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, ns, "auth")
	as = wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid, "Secret auth-tls", "status.tls.caBundle")
	if st := as.Status.TLS; st == nil || st.SecretName != "auth-tls" || st.CABundle != string(ca.PEM) || st.NotAfter == nil || !st.NotAfter.Time.Equal(good.Cert.NotAfter) || len(st.DNSNames) != 2 {
		t.Errorf("status.tls = %+v", as.Status.TLS)
	}
	if as.Status.ServerURL != "https://auth-authserver."+ns+".svc" || as.Status.IssuerURL != "https://auth-issuer."+ns+".svc" || as.Status.Issuer != as.Status.ServerURL {
		t.Errorf("serverURL %s, issuerURL %s, issuer %s: want https", as.Status.ServerURL, as.Status.IssuerURL, as.Status.Issuer)
	}
	templates := map[string]corev1.PodTemplateSpec{}
	for _, name := range []string{"auth-authserver", "auth-issuer"} {
		d := get(t, ns, name, &appsv1.Deployment{})
		templates[name] = d.Spec.Template
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		if len(c.Ports) == 0 || c.Ports[0].Name != "https" || c.Ports[0].ContainerPort != 8443 {
			t.Errorf("%s ports = %+v", name, c.Ports)
		}
		var mounted bool
		for _, v := range pod.Volumes {
			mounted = mounted || (v.Secret != nil && v.Secret.SecretName == "auth-tls")
		}
		if !mounted {
			t.Errorf("%s does not mount Secret auth-tls", name)
		}
		svc := get(t, ns, name, &corev1.Service{})
		if p := svc.Spec.Ports[0]; p.Name != "https" || p.Port != 443 || p.TargetPort.StrVal != "https" {
			t.Errorf("Service %s port = %+v", name, p)
		}
	}

	// A renewal reaches the pods through the kubelet: nothing rolls.
	renewed := ca.Issue(t, time.Now().Add(180*24*time.Hour), names...)
	update(t, secret, func(s *corev1.Secret) { s.Data = tlsSecret(ns, "auth-tls", renewed, ca.PEM).Data })
	reconcileOnce(t, r, ns, "auth")
	as = wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid)
	if !as.Status.TLS.NotAfter.Time.Equal(renewed.Cert.NotAfter) {
		t.Errorf("status.tls.notAfter = %v after the renewal, want %v", as.Status.TLS.NotAfter, renewed.Cert.NotAfter)
	}
	for name, before := range templates {
		if after := get(t, ns, name, &appsv1.Deployment{}).Spec.Template; !equality.Semantic.DeepEqual(before, after) {
			t.Errorf("the renewal changed the pod template of %s: the pods would roll", name)
		}
	}

	other := ca.Issue(t, time.Now().Add(time.Hour), names...)
	for _, tc := range []struct {
		name         string
		data         map[string][]byte
		reason, says string
	}{
		{"a certificate that does not match its key", map[string][]byte{corev1.TLSCertKey: other.CertPEM, corev1.TLSPrivateKeyKey: renewed.KeyPEM}, authv1alpha1.ReasonCertificateInvalid, "private key does not match public key"},
		{"not PEM", map[string][]byte{corev1.TLSCertKey: []byte("nope"), corev1.TLSPrivateKeyKey: []byte("nope")}, authv1alpha1.ReasonCertificateInvalid, "does not hold a usable certificate"},
		{"no key", map[string][]byte{corev1.TLSCertKey: renewed.CertPEM}, authv1alpha1.ReasonTLSSecretUnusable, "cannot use"},
		{"expired", tlsSecret(ns, "", ca.IssueBetween(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), names...), nil).Data, authv1alpha1.ReasonCertificateInvalid, "expired at"},
		{"for other names", tlsSecret(ns, "", ca.Issue(t, time.Now().Add(time.Hour), "auth.example.com"), nil).Data, authv1alpha1.ReasonCertificateInvalid, "does not name auth-authserver." + ns + ".svc and auth-issuer." + ns + ".svc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			update(t, secret, func(s *corev1.Secret) { s.Data = tc.data })
			// A spec change is held back too while the Secret cannot start a pod.
			update(t, &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}}, func(a *authv1alpha1.AuthService) {
				a.Spec.Server.LogLevel = "debug"
			})
			reconcileOnce(t, r, ns, "auth")
			as := wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, tc.reason, "auth-tls", tc.says)
			// A pair that loads (expired, other names) is what the pods now serve, and
			// status.tls says so; one that does not load leaves them, and status.tls, on
			// the last good certificate.
			loads := tc.name == "expired" || tc.name == "for other names"
			if st := as.Status.TLS; st == nil || st.NotAfter.Time.Equal(renewed.Cert.NotAfter) == loads {
				t.Errorf("status.tls = %+v; want the last good certificate's unless the Secret's pair loads (%v)", st, loads)
			}
			if !loads {
				for name, before := range templates {
					if after := get(t, ns, name, &appsv1.Deployment{}).Spec.Template; !equality.Semantic.DeepEqual(before, after) {
						t.Errorf("%s was rolled out on a Secret no pod can start with", name)
					}
				}
			}
			update(t, &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}}, func(a *authv1alpha1.AuthService) {
				a.Spec.Server.LogLevel = ""
			})
		})
	}
}

// TestTLS_TheUseLabelGatesTheSecret: with --require-secret-use-label, a TLS Secret without
// the label is unusable, with the same message as a missing one.
func TestTLS_TheUseLabelGatesTheSecret(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"}
	})
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(time.Now()), nil)
	r.RequireSecretUseLabel = true
	reconcileOnce(t, r, ns, "auth")
	missing := condition(get(t, ns, "auth", &authv1alpha1.AuthService{}), authv1alpha1.TLSReadyCondition).Message
	ca := tlstest.NewCA(t)
	secret := tlsSecret(ns, "auth-tls", ca.Issue(t, time.Now().Add(time.Hour), "auth-authserver."+ns+".svc", "auth-issuer."+ns+".svc"), ca.PEM)
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, ns, "auth")
	as := wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, "use.auth.hiringo.tech/auth=true")
	if got := condition(as, authv1alpha1.TLSReadyCondition).Message; got != missing {
		t.Errorf("an unlabelled Secret's message %q differs from a missing one's %q", got, missing)
	}
	update(t, secret, func(s *corev1.Secret) { s.Labels = map[string]string{"use.auth.hiringo.tech/auth": "true"} })
	reconcileOnce(t, r, ns, "auth")
	wantCondition(t, ns, "auth", authv1alpha1.TLSReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid)
}

// TestIntrospection_TheVerifierGetsAnIdentityOnlyWhileClientsAreListed: with
// spec.introspection.clients the verifier runs as its own ServiceAccount, bound to the
// TokenReview ClusterRole, and is told the clients; without, it has no identity and the
// binding goes; deleting the AuthService deletes the binding too.
func TestIntrospection_TheVerifierGetsAnIdentityOnlyWhileClientsAreListed(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Introspection.Clients = []authv1alpha1.IntrospectionClient{{Namespace: "edge", ServiceAccountName: "gateway"}}
	})
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	reconcileOnce(t, r, ns, "auth")
	binding := named(ns, "auth").VerifierClusterRoleBindingName()
	crb := get(t, "", binding, &rbacv1.ClusterRoleBinding{})
	if crb.RoleRef.Name != authv1alpha1.IssuerClusterRoleName || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "auth-authserver" || crb.Subjects[0].Namespace != ns {
		t.Errorf("verifier binding = %+v %+v", crb.RoleRef, crb.Subjects)
	}
	get(t, ns, "auth-authserver", &corev1.ServiceAccount{})
	pod := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Spec
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if pod.ServiceAccountName != "auth-authserver" || !*pod.AutomountServiceAccountToken || env["AUTHSERVER_INTROSPECTION_CLIENTS"] != "edge/gateway" || env["AUTHSERVER_CLIENT_AUDIENCE"] != "http://auth-authserver."+ns+".svc" {
		t.Errorf("verifier pod: serviceAccount %q, automount %v, env %v", pod.ServiceAccountName, *pod.AutomountServiceAccountToken, env)
	}

	update(t, &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}}, func(a *authv1alpha1.AuthService) {
		a.Spec.Introspection.Clients = nil
	})
	reconcileOnce(t, r, ns, "auth")
	if !isNotFound(t, "", binding, &rbacv1.ClusterRoleBinding{}) {
		t.Error("the verifier's binding stays without introspection clients")
	}
	pod = get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Spec
	if pod.ServiceAccountName != "" || *pod.AutomountServiceAccountToken {
		t.Errorf("without introspection clients the verifier runs as %q, token mounted %v", pod.ServiceAccountName, *pod.AutomountServiceAccountToken)
	}

	update(t, &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}}, func(a *authv1alpha1.AuthService) {
		a.Spec.Introspection.Clients = []authv1alpha1.IntrospectionClient{{Namespace: "edge", ServiceAccountName: "gateway"}}
	})
	reconcileOnce(t, r, ns, "auth")
	get(t, "", binding, &rbacv1.ClusterRoleBinding{})
	if err := k8sClient.Delete(context.Background(), get(t, ns, "auth", &authv1alpha1.AuthService{})); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "auth"}}); err != nil {
		t.Fatal(err)
	}
	if !isNotFound(t, "", binding, &rbacv1.ClusterRoleBinding{}) {
		t.Error("deleting the AuthService left the verifier's binding")
	}
}
