package controllers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

const (
	// tlsSecretRetry is how soon an unusable or invalid TLS Secret is looked at again: it is
	// the user's (or cert-manager's), not labelled, so no watch reports its change.
	tlsSecretRetry = 30 * time.Second
	// tlsSecretResync is how often a good TLS Secret is re-read for a renewal, so that
	// status.tls follows it.
	tlsSecretResync = 5 * time.Minute
	// tlsCAKey is the Secret key of the issuing CA, as cert-manager writes it.
	tlsCAKey = "ca.crt"
)

// reconcileTLS checks the Secret spec.server.tls names, records the TLSReady finding and,
// for a certificate that loads, status.tls. It decides whether the workloads may roll out:
// a pod started on a Secret that is missing or does not load would not start, while the
// running ones keep serving their last good certificate, so they are left as they are.
func (r *AuthServiceReconciler) reconcileTLS(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	spec := as.Spec.Server.TLS
	if spec == nil {
		as.Status.TLS = nil
		s.tlsUsable = true
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonPlainHTTP,
			"spec.server.tls is not set: the verifier and the issuer serve plain HTTP")
		return reconcile.Result{}, nil
	}
	secret, problem, err := r.readTLSSecret(ctx, as, spec.SecretName)
	if err != nil {
		return reconcile.Result{}, err
	}
	if secret == nil {
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, problem)
		return reconcile.Result{RequeueAfter: tlsSecretRetry}, nil
	}
	cert, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("Secret %s (spec.server.tls.secretName) does not hold a usable certificate: %v; fix tls.crt and tls.key. Running pods keep serving their last good certificate; new ones are not rolled out until then", spec.SecretName, err))
		return reconcile.Result{RequeueAfter: tlsSecretRetry}, nil
	}
	// The pair loads, so pods can start with it: the workloads may roll out whatever the
	// checks below find.
	s.tlsUsable = true
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	notAfter := metav1.NewTime(leaf.NotAfter)
	as.Status.TLS = &authv1alpha1.TLSStatus{
		SecretName: spec.SecretName,
		CABundle:   caBundle(secret.Data[tlsCAKey], cert.Certificate),
		DNSNames:   leaf.DNSNames,
		NotAfter:   &notAfter,
	}
	now := r.Clock.Now()
	var missing []string
	for _, host := range []string{as.ServerName() + "." + as.Namespace + ".svc", as.IssuerName() + "." + as.Namespace + ".svc"} {
		if leaf.VerifyHostname(host) != nil {
			missing = append(missing, host)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("The certificate in Secret %s (spec.server.tls.secretName) expired at %s: renew it (cert-manager renews before expiry; check its Certificate)", spec.SecretName, leaf.NotAfter.UTC().Format(time.RFC3339)))
		return reconcile.Result{RequeueAfter: tlsSecretRetry}, nil
	case now.Before(leaf.NotBefore):
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("The certificate in Secret %s (spec.server.tls.secretName) is not valid before %s: check the clock of its issuer", spec.SecretName, leaf.NotBefore.UTC().Format(time.RFC3339)))
		return reconcile.Result{RequeueAfter: tlsSecretRetry}, nil
	case len(missing) > 0:
		s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("The certificate in Secret %s (spec.server.tls.secretName) does not name %s: add them to its DNS names (dnsNames of the cert-manager Certificate), or callers of the Services cannot verify it", spec.SecretName, strings.Join(missing, " and ")))
		return reconcile.Result{RequeueAfter: tlsSecretRetry}, nil
	}
	ca := "the CA in status.tls.caBundle"
	if as.Status.TLS.CABundle == "" {
		ca = "the CA that signed it (the Secret has no ca.crt)"
	}
	s.found.set(authv1alpha1.TLSReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid,
		fmt.Sprintf("The verifier and the issuer serve HTTPS with the certificate of Secret %s, valid until %s; consumers trust %s", spec.SecretName, leaf.NotAfter.UTC().Format(time.RFC3339), ca))
	return reconcile.Result{RequeueAfter: min(tlsSecretResync, max(leaf.NotAfter.Sub(now)+time.Second, time.Second))}, nil
}

// readTLSSecret reads the Secret named by spec.server.tls from the API (it is not the
// operator's, so not in its cache). A Secret that cannot be used (missing, without
// tls.crt and tls.key, or without the use label that --require-secret-use-label asks
// for) is nil with the condition's message, the same in every case, so that it does not
// tell whoever may create AuthServices which Secrets exist.
func (r *AuthServiceReconciler) readTLSSecret(ctx context.Context, as *authv1alpha1.AuthService, name string) (*corev1.Secret, string, error) {
	want := fmt.Sprintf("it must exist in namespace %s with non-empty keys %s and %s", as.Namespace, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	if r.RequireSecretUseLabel {
		want += fmt.Sprintf(" and the label %s=true", secretUseLabel(as))
	}
	unusable := fmt.Sprintf("spec.server.tls.secretName names Secret %s, which this AuthService cannot use: %s; create or fix it (a cert-manager Certificate writes one). Running pods keep serving their last good certificate; new ones are not rolled out until then", name, want)
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, unusable, nil
	case err != nil:
		return nil, "", fmt.Errorf("reading Secret %s named by spec.server.tls.secretName: %w", name, err)
	}
	if len(secret.Data[corev1.TLSCertKey]) == 0 || len(secret.Data[corev1.TLSPrivateKeyKey]) == 0 ||
		(r.RequireSecretUseLabel && secret.Labels[secretUseLabel(as)] != "true") {
		return nil, unusable, nil
	}
	return secret, "", nil
}

// caBundle is the PEM certificate consumers trust: ca.crt when the Secret has one, else
// the topmost certificate of the chain when it is a CA or signed itself, else "".
func caBundle(caCRT []byte, chain [][]byte) string {
	if block, _ := pem.Decode(caCRT); block != nil && block.Type == "CERTIFICATE" {
		if _, err := x509.ParseCertificate(block.Bytes); err == nil {
			return string(bytes.TrimSpace(caCRT)) + "\n"
		}
	}
	top, err := x509.ParseCertificate(chain[len(chain)-1])
	if err != nil {
		return ""
	}
	if top.IsCA || top.CheckSignatureFrom(top) == nil {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: top.Raw}))
	}
	return ""
}
