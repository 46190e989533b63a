package devstack

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// controlPlaneProcess is a kube-controller-manager or kube-scheduler the stack runs.
type controlPlaneProcess struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startProcess starts a control-plane binary in its own process group, killed with the
// stack's process if that dies without stopping it, its output in logs/<name>.log.
func (s *Stack) startProcess(name string, args []string) (*controlPlaneProcess, error) {
	logPath := filepath.Join(s.opts.WorkDir, "logs", name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the %s log: %w", name, err)
	}
	cmd := exec.Command(filepath.Join(s.opts.ControlPlaneDir, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &controlPlaneProcess{name: name, cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.done <- err
	}()
	return p, nil
}

// kubeconfigFor writes a kubeconfig for a control-plane identity (a client certificate
// from envtest's CA, as kubeadm gives each component) and returns its path.
func (s *Stack) kubeconfigFor(user string) (string, error) {
	u, err := s.env.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return "", fmt.Errorf("creating the %s user: %w", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering the %s kubeconfig: %w", user, err)
	}
	path := filepath.Join(s.opts.WorkDir, "pki", user+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the %s kubeconfig: %w", user, err)
	}
	return path, nil
}

// startControllers runs kube-controller-manager (with the service-account signing key
// the API server verifies, the API server's CA for the kube-root-ca.crt ConfigMaps, and a
// cluster-signing CA for CertificateSigningRequests) and kube-scheduler, each under its
// own identity, and waits until the controllers have published the root CA and created
// the default ServiceAccount, which every pod needs.
func (s *Stack) startControllers(ctx context.Context) error {
	pki := filepath.Join(s.opts.WorkDir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return fmt.Errorf("creating the pki directory: %w", err)
	}
	rootCA := filepath.Join(pki, "apiserver-ca.crt")
	if err := os.WriteFile(rootCA, s.Config.CAData, 0o644); err != nil {
		return fmt.Errorf("writing the API server CA: %w", err)
	}
	signingCert, signingKey := filepath.Join(pki, "cluster-signing.crt"), filepath.Join(pki, "cluster-signing.key")
	if err := writeSigningCA(signingCert, signingKey); err != nil {
		return err
	}
	kcmConfig, err := s.kubeconfigFor("system:kube-controller-manager")
	if err != nil {
		return err
	}
	schedConfig, err := s.kubeconfigFor("system:kube-scheduler")
	if err != nil {
		return err
	}
	saKey := filepath.Join(s.env.ControlPlane.GetAPIServer().CertDir, "sa-signer.key")
	kcm, err := s.startProcess("kube-controller-manager", []string{
		"--kubeconfig=" + kcmConfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + rootCA,
		"--cluster-signing-cert-file=" + signingCert,
		"--cluster-signing-key-file=" + signingKey,
		// Claims are bound within a second or so rather than the default 15 s resync.
		"--pvclaimbinder-sync-period=1s",
	})
	if err != nil {
		return err
	}
	s.controllers = append(s.controllers, kcm)
	sched, err := s.startProcess("kube-scheduler", []string{
		"--kubeconfig=" + schedConfig,
		"--secure-port=0",
		"--leader-elect=false",
	})
	if err != nil {
		return err
	}
	s.controllers = append(s.controllers, sched)

	c, err := s.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		for _, p := range s.controllers {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("%s exited at start (%v): see %s", p.name, err, p.log)
			default:
			}
		}
		err := readyControllers(ctx, c)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-controller-manager not working within 90s (%w): see %s", err, kcm.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readyControllers checks the work of two controllers every pod depends on: the root-CA
// publisher and the ServiceAccount controller.
func readyControllers(ctx context.Context, c client.Client) error {
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}); err != nil {
		return fmt.Errorf("no default/kube-root-ca.crt yet: %w", err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{}); err != nil {
		return fmt.Errorf("no default/default ServiceAccount yet: %w", err)
	}
	return nil
}

// stopControllers stops kube-scheduler and kube-controller-manager.
func (s *Stack) stopControllers() error {
	var errs []error
	for i := len(s.controllers) - 1; i >= 0; i-- {
		p := s.controllers[i]
		if err := stopProcess(p.cmd, p.done, 10*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	s.controllers = nil
	return errors.Join(errs...)
}

// writeSigningCA writes a self-signed CA for kube-controller-manager's CSR signer.
func writeSigningCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the cluster-signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return fmt.Errorf("cluster-signing serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "auth-operator dev cluster signer"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("signing the cluster-signing certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the cluster-signing key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing the cluster-signing certificate: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("writing the cluster-signing key: %w", err)
	}
	return nil
}
