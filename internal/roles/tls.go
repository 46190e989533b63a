package roles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	cwmetrics "sigs.k8s.io/controller-runtime/pkg/certwatcher/metrics"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// newCertWatcher loads the serving certificate and key (a mounted kubernetes.io/tls
// Secret) and keeps them current: certwatcher re-reads them when the kubelet swaps the
// Secret's files in and every 10 seconds, and keeps serving the last pair that loaded
// whenever the files do not hold a valid one (a Secret deleted, or updated with a
// certificate that does not match its key). A pair that does not load at start is an
// error: there is nothing to fall back on. The reads and their failures are counted in
// certwatcher_read_certificate_total and certwatcher_read_certificate_errors_total, the
// served certificate's expiry in authserver_tls_certificate_not_after_seconds.
func newCertWatcher(certFile, keyFile string, log *slog.Logger, reg prometheus.Registerer) (*certwatcher.CertWatcher, error) {
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	cw, err := certwatcher.New(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate (--tls-cert-file %s, --tls-key-file %s): %w", certFile, keyFile, err)
	}
	notAfter := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authserver_tls_certificate_not_after_seconds",
		Help: "Expiry (Unix seconds) of the TLS certificate the API serves; alert well before it passes.",
	})
	reg.MustRegister(notAfter, cwmetrics.ReadCertificateTotal, cwmetrics.ReadCertificateErrors)
	record := func(cert tls.Certificate) {
		if len(cert.Certificate) == 0 {
			return
		}
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			notAfter.Set(float64(leaf.NotAfter.Unix()))
		}
	}
	if cert, _ := cw.GetCertificate(nil); cert != nil {
		record(*cert)
	}
	cw.RegisterCallback(record)
	return cw, nil
}

// serverTLSConfig serves the watcher's current certificate, TLS 1.2 and later.
func serverTLSConfig(cw *certwatcher.CertWatcher) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate}
}
