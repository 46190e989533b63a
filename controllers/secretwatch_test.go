package controllers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/tlstest"
)

// TestReferencedSecrets_AChangeReconcilesAtOnce: the Secrets an AuthService names are
// watched (their metadata only), not polled. While one is missing no pass asks to come back
// before the key schedule does (well beyond this test's waits), and yet creating it, then
// changing it, reconciles the AuthService at once: nothing but the watch brings those passes.
func TestReferencedSecrets_AChangeReconcilesAtOnce(t *testing.T) {
	ca := tlstest.NewCA(t)
	tlsData := func(ns string, notAfter time.Time) map[string][]byte {
		leaf := ca.Issue(t, notAfter, "auth-authserver."+ns+".svc", "auth-issuer."+ns+".svc")
		return map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM}
	}
	external := func(mutate func(*authv1alpha1.ExternalRedisSpec)) func(*authv1alpha1.AuthService) {
		return func(as *authv1alpha1.AuthService) {
			externalRedis(as)
			mutate(as.Spec.Redis.External)
		}
	}
	podAnnotation := func(annotation string) func(t *testing.T, ns string) string {
		return func(t *testing.T, ns string) string {
			return get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[annotation]
		}
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*authv1alpha1.AuthService)
		secret    string
		condition string
		// missing and usable are the condition's reasons without the Secret and with it.
		missing, usable string
		data, changed   func(ns string) map[string][]byte
		// observe is what the change of the Secret changes.
		observe func(t *testing.T, ns string) string
	}{{
		name: "the external Redis password", secret: "corp-redis",
		mutate: external(func(e *authv1alpha1.ExternalRedisSpec) {
			e.PasswordSecretRef = &authv1alpha1.SecretKeyReference{Name: "corp-redis", Key: "pw"}
		}),
		condition: authv1alpha1.RedisReadyCondition, missing: authv1alpha1.ReasonRedisSecretUnusable, usable: authv1alpha1.ReasonExternalRedis,
		data:    func(string) map[string][]byte { return map[string][]byte{"pw": []byte("s3cret")} },
		changed: func(string) map[string][]byte { return map[string][]byte{"pw": []byte("n3w-s3cret")} },
		observe: podAnnotation(RedisPasswordChecksumAnnotation),
	}, {
		name: "the external Sentinels' password", secret: "corp-sentinel",
		mutate: external(func(e *authv1alpha1.ExternalRedisSpec) {
			e.MasterName, e.SentinelPasswordSecretRef = "blacklist", &authv1alpha1.SecretKeyReference{Name: "corp-sentinel", Key: "pw"}
		}),
		condition: authv1alpha1.RedisReadyCondition, missing: authv1alpha1.ReasonRedisSecretUnusable, usable: authv1alpha1.ReasonExternalRedis,
		data:    func(string) map[string][]byte { return map[string][]byte{"pw": []byte("s3cret")} },
		changed: func(string) map[string][]byte { return map[string][]byte{"pw": []byte("n3w-s3cret")} },
		observe: podAnnotation(RedisSentinelPasswordChecksumAnnotation),
	}, {
		name: "the external Redis CA bundle", secret: "corp-redis-ca",
		mutate: external(func(e *authv1alpha1.ExternalRedisSpec) {
			e.TLS = &authv1alpha1.RedisTLSSpec{Enabled: true, CASecretRef: &authv1alpha1.SecretKeyReference{Name: "corp-redis-ca", Key: "ca.pem"}}
		}),
		condition: authv1alpha1.RedisReadyCondition, missing: authv1alpha1.ReasonRedisSecretUnusable, usable: authv1alpha1.ReasonExternalRedis,
		data: func(string) map[string][]byte {
			return map[string][]byte{"ca.pem": []byte("-----BEGIN CERTIFICATE-----\nold\n")}
		},
		changed: func(string) map[string][]byte {
			return map[string][]byte{"ca.pem": []byte("-----BEGIN CERTIFICATE-----\nnew\n")}
		},
		observe: podAnnotation(RedisCAChecksumAnnotation),
	}, {
		name: "the serving certificate", secret: "auth-tls",
		mutate: func(as *authv1alpha1.AuthService) {
			as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"}
		},
		condition: authv1alpha1.TLSReadyCondition, missing: authv1alpha1.ReasonTLSSecretUnusable, usable: authv1alpha1.ReasonCertificateValid,
		data:    func(ns string) map[string][]byte { return tlsData(ns, time.Now().Add(90*24*time.Hour)) },
		changed: func(ns string) map[string][]byte { return tlsData(ns, time.Now().Add(180*24*time.Hour)) },
		observe: func(t *testing.T, ns string) string {
			if st := get(t, ns, "auth", &authv1alpha1.AuthService{}).Status.TLS; st != nil && st.NotAfter != nil {
				return st.NotAfter.String()
			}
			return ""
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			clk := clocktesting.NewFakePassiveClock(time.Now())
			startManager(t, ns, clk)
			createAuthService(t, ns, "auth", tc.mutate)
			waitCondition(t, ns, "auth", tc.condition, metav1.ConditionFalse, tc.missing)
			// No timer brings the next pass: the earliest one a pass asks for is the key
			// schedule's, far beyond the waits below.
			if res := reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth"); res.RequeueAfter <= time.Hour {
				t.Fatalf("with Secret %s missing a pass asks to come back after %s: a poll, where the watch should do", tc.secret, res.RequeueAfter)
			}

			secret := createSecret(t, ns, tc.secret, tc.data(ns))
			waitCondition(t, ns, "auth", tc.condition, metav1.ConditionTrue, tc.usable)
			var before string
			poll.Until(t, waitTimeout, "what the Secret sets", func() error {
				if before = tc.observe(t, ns); before == "" {
					return errorf("not set yet")
				}
				return nil
			})
			update(t, secret, func(s *corev1.Secret) { s.Data = tc.changed(ns) })
			poll.Until(t, waitTimeout, "the change of Secret "+tc.secret+" to reach the AuthService", func() error {
				if after := tc.observe(t, ns); after == before {
					return errorf("still %s", after)
				}
				return nil
			})
		})
	}
}
