package controllers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// tlsCAKey is the Secret key of the issuing CA, as cert-manager writes it.
const tlsCAKey = "ca.crt"

// tlsFound is what the TLS phase found about the Secret spec.server.tls names: that it
// cannot be used (missing, without tls.crt and tls.key, or without the use label), that its
// pair does not load, or the certificate it serves.
type tlsFound struct {
	unusable bool
	loadErr  error
	leaf     *x509.Certificate
}

// tlsUsable reports whether the workloads may roll out as far as TLS goes: plain HTTP, or a
// TLS Secret whose certificate and key load, whatever else is wrong with them. A pod started
// on a Secret that is missing or does not load would not start, while the running ones keep
// serving their last good certificate, so they are left as they are.
func (s *scope) tlsUsable() bool { return s.as.Spec.Server.TLS == nil || s.tls.leaf != nil }

// reconcileTLS reads the Secret spec.server.tls names and records what it holds and, for a
// certificate that loads, status.tls. The Secret is watched, so a change to it (a renewal
// included) brings the next pass; a pass is only asked for when the certificate becomes
// valid or expires.
func (r *AuthServiceReconciler) reconcileTLS(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	spec := as.Spec.Server.TLS
	if spec == nil {
		as.Status.TLS = nil
		return reconcile.Result{}, nil
	}
	secret, err := r.readUserSecret(ctx, as, spec.SecretName, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading Secret %s named by spec.server.tls.secretName: %w", spec.SecretName, err)
	}
	if secret == nil {
		s.tls.unusable = true
		return reconcile.Result{}, nil
	}
	cert, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		s.tls.loadErr = err
		return reconcile.Result{}, nil
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	s.tls.leaf = leaf
	notAfter := metav1.NewTime(leaf.NotAfter)
	as.Status.TLS = &authv1alpha1.TLSStatus{
		SecretName: spec.SecretName,
		CABundle:   caBundle(secret.Data[tlsCAKey], cert.Certificate),
		DNSNames:   leaf.DNSNames,
		NotAfter:   &notAfter,
	}
	switch {
	case s.now.Before(leaf.NotBefore):
		return reconcile.Result{RequeueAfter: leaf.NotBefore.Sub(s.now)}, nil
	case s.now.After(leaf.NotAfter):
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: leaf.NotAfter.Sub(s.now) + time.Second}, nil
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
