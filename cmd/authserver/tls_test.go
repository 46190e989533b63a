package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/atomicdir"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tlstest"
)

// writeTLSSecret lays a kubernetes.io/tls Secret's files out in dir as the kubelet
// mounts (and updates) it.
func writeTLSSecret(t *testing.T, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	if _, err := atomicdir.Write(dir, map[string]atomicdir.File{
		"tls.crt": {Data: certPEM, Mode: 0o644},
		"tls.key": {Data: keyPEM, Mode: 0o600},
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestServe_TLSReloadsAndKeepsTheLastGoodCertificate serves the API over TLS from a
// mounted kubernetes.io/tls Secret: a renewed certificate is served without a restart;
// a Secret updated with a certificate that does not match its key, or with garbage, is
// refused and the last good certificate stays served, the failure counted; the admin
// port stays plain HTTP.
func TestServe_TLSReloadsAndKeepsTheLastGoodCertificate(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	ca := tlstest.NewCA(t)
	first := ca.Issue(t, time.Now().Add(time.Hour), "127.0.0.1")
	secret := filepath.Join(dir, "tls")
	writeTLSSecret(t, secret, first.CertPEM, first.KeyPEM)
	addr, admin := loopback.FreeAddr(t), loopback.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "serve", "--listen", addr, "--admin-listen", admin, "--keys-dir", keys, "--redis-addrs", redis.Addr,
			"--issuer", "https://"+addr, "--tls-cert-file", filepath.Join(secret, "tls.crt"), "--tls-key-file", filepath.Join(secret, "tls.key"),
			"--log-level", "error", "--shutdown-delay", "0s")
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	waitReady(t, "http://"+admin+"/readyz", done)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true,
	}}
	served := func() (string, error) {
		resp, err := client.Get("https://" + addr + "/.well-known/openid-configuration")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"issuer":"https://`+addr+`"`) {
			return "", fmt.Errorf("discovery over TLS: %d %s", resp.StatusCode, body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	if serial, err := served(); err != nil || serial != first.Cert.SerialNumber.String() {
		t.Fatalf("first certificate: serial %s, %v; want %s", serial, err, first.Cert.SerialNumber)
	}
	if resp, err := client.Get("http://" + addr + "/.well-known/openid-configuration"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d, want net/http's 400", resp.StatusCode)
		}
	}

	renewed := ca.Issue(t, time.Now().Add(2*time.Hour), "127.0.0.1")
	writeTLSSecret(t, secret, renewed.CertPEM, renewed.KeyPEM)
	poll.Until(t, 15*time.Second, "the renewed certificate to be served", func() error {
		serial, err := served()
		if err == nil && serial != renewed.Cert.SerialNumber.String() {
			err = fmt.Errorf("still serving %s", serial)
		}
		return err
	})

	errorsBefore := readErrors(t, admin)
	other := ca.Issue(t, time.Now().Add(3*time.Hour), "127.0.0.1")
	for name, files := range map[string][2][]byte{
		"a certificate that does not match its key": {other.CertPEM, renewed.KeyPEM},
		"garbage": {[]byte("not a certificate"), []byte("not a key")},
	} {
		writeTLSSecret(t, secret, files[0], files[1])
		poll.Until(t, 15*time.Second, "the bad Secret ("+name+") to be read and refused", func() error {
			if n := readErrors(t, admin); n <= errorsBefore {
				return fmt.Errorf("certwatcher_read_certificate_errors_total %v", n)
			}
			return nil
		})
		errorsBefore = readErrors(t, admin)
		if serial, err := served(); err != nil || serial != renewed.Cert.SerialNumber.String() {
			t.Fatalf("after %s: serving %s, %v; want the last good certificate %s", name, serial, err, renewed.Cert.SerialNumber)
		}
	}
}

// readErrors reads certwatcher_read_certificate_errors_total from the admin port.
func readErrors(t *testing.T, admin string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "certwatcher_read_certificate_errors_total "); ok {
			var n float64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("certwatcher_read_certificate_errors_total %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no certwatcher_read_certificate_errors_total on /metrics")
	return 0
}
