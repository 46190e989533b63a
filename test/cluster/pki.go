package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certLifetime is how long the stack's certificates are valid: longer than any run.
const certLifetime = 7 * 24 * time.Hour

// authority is a certificate authority of the stack.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// newAuthority makes a self-signed CA named cn.
func newAuthority(cn string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := certTemplate(cn, nil)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the %s CA: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func certTemplate(cn string, orgs []string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
	}, nil
}

// keyPair is a certificate and its key, PEM-encoded.
type keyPair struct {
	cert, key []byte
}

// issue signs a certificate for cn (the user name of a client certificate) in orgs (its
// groups), usable as a client certificate and, with hosts, as a serving one.
func (a *authority) issue(cn string, orgs []string, hosts ...string) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	tmpl, err := certTemplate(cn, orgs)
	if err != nil {
		return keyPair{}, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return keyPair{}, fmt.Errorf("signing %s: %w", cn, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: keyPEM}, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// write stores the pair as dir/name.crt and dir/name.key and returns their paths.
func (p keyPair) write(dir, name string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, p.cert, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, p.key, 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// serviceAccountKey writes a key pair that the API server signs ServiceAccount tokens with
// and returns the paths of the private and the public key.
func serviceAccountKey(dir string) (private, public string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	private, public = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(private, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", err
	}
	return private, public, nil
}

// kubeconfig renders a kubeconfig that reaches server (verified with caPEM) as the client
// certificate pair.
func kubeconfig(server string, caPEM []byte, user keyPair) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: user.cert, ClientKeyData: user.key}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	cfg.CurrentContext = "local"
	return clientcmd.Write(*cfg)
}

// pkiFiles are the certificates, keys and kubeconfigs of a node's components.
type pkiFiles struct {
	ca, caKey                                             string
	caPEM                                                 []byte
	apiServerCert, apiServerKey                           string
	apiServerKubeletClientCert, apiServerKubeletClientKey string
	kubeletServerCert, kubeletServerKey                   string
	serviceAccountPrivate, serviceAccountPublic           string
	// kubeconfigs by component: admin, kubelet, kube-proxy, kube-controller-manager,
	// kube-scheduler.
	kubeconfigs map[string]string
	admin       keyPair
}

// clientIdentities are the users (and groups) the components authenticate as, as kubeadm
// gives them, so that the API server's Node authorizer and default RBAC apply.
var clientIdentities = map[string]struct {
	user   string
	groups []string
}{
	"admin":                   {"auth-operator-node-admin", []string{"system:masters"}},
	"kubelet":                 {"system:node:" + NodeName, []string{"system:nodes"}},
	"kube-proxy":              {"system:kube-proxy", nil},
	"kube-controller-manager": {"system:kube-controller-manager", nil},
	"kube-scheduler":          {"system:kube-scheduler", nil},
}

// writePKI makes the node's CA and every certificate, key and kubeconfig under p.pki().
func writePKI(p paths) (pkiFiles, error) {
	dir := p.pki()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pkiFiles{}, err
	}
	ca, err := newAuthority("auth-operator-node-ca")
	if err != nil {
		return pkiFiles{}, err
	}
	f := pkiFiles{caPEM: ca.pem, kubeconfigs: map[string]string{}}
	f.ca = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(f.ca, ca.pem, 0o644); err != nil {
		return pkiFiles{}, err
	}
	caKeyPEM, err := encodeKey(ca.key)
	if err != nil {
		return pkiFiles{}, err
	}
	f.caKey = filepath.Join(dir, "ca.key")
	if err := os.WriteFile(f.caKey, caKeyPEM, 0o600); err != nil {
		return pkiFiles{}, err
	}
	server, err := ca.issue("kube-apiserver", nil, NodeIP, APIServerServiceIP, "127.0.0.1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc."+ClusterDomain)
	if err != nil {
		return pkiFiles{}, err
	}
	if f.apiServerCert, f.apiServerKey, err = server.write(dir, "apiserver"); err != nil {
		return pkiFiles{}, err
	}
	kubeletClient, err := ca.issue("kube-apiserver-kubelet-client", []string{"system:masters"})
	if err != nil {
		return pkiFiles{}, err
	}
	if f.apiServerKubeletClientCert, f.apiServerKubeletClientKey, err = kubeletClient.write(dir, "apiserver-kubelet-client"); err != nil {
		return pkiFiles{}, err
	}
	kubeletServer, err := ca.issue("system:node:"+NodeName, []string{"system:nodes"}, NodeIP, NodeName)
	if err != nil {
		return pkiFiles{}, err
	}
	if f.kubeletServerCert, f.kubeletServerKey, err = kubeletServer.write(dir, "kubelet-server"); err != nil {
		return pkiFiles{}, err
	}
	if f.serviceAccountPrivate, f.serviceAccountPublic, err = serviceAccountKey(dir); err != nil {
		return pkiFiles{}, err
	}
	server443 := fmt.Sprintf("https://%s:%d", NodeIP, apiServerPort)
	for component, id := range clientIdentities {
		pair, err := ca.issue(id.user, id.groups)
		if err != nil {
			return pkiFiles{}, err
		}
		if component == "admin" {
			f.admin = pair
		}
		data, err := kubeconfig(server443, ca.pem, pair)
		if err != nil {
			return pkiFiles{}, err
		}
		path := filepath.Join(dir, component+".kubeconfig")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return pkiFiles{}, err
		}
		f.kubeconfigs[component] = path
	}
	return f, nil
}
