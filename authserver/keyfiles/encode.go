package keyfiles

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// Encode renders a set as the files of its layout: the manifest, a public key file for
// every key and a private key file for next and active keys only, and the same two for
// each key's refresh-token key. A retired key's private parts are never written, even
// when the caller still holds them.
func Encode(s keydomain.Set) (map[string][]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	files := make(map[string][]byte, 2*len(s.Keys)+1)
	m := Manifest{Version: ManifestVersion, Algorithm: AlgorithmES256, Keys: make([]keydomain.KeyMeta, 0, len(s.Keys))}
	for _, k := range s.Keys {
		m.Keys = append(m.Keys, k.KeyMeta)
		pub, err := encodePublic(k)
		if err != nil {
			return nil, err
		}
		files[PublicKeyFile(k.ID)] = pub
		if k.Refresh != nil {
			if files[RefreshPublicKeyFile(k.ID)], err = encodePublicKey(k.ID, k.Refresh.Public); err != nil {
				return nil, err
			}
		}
		if k.State == keydomain.StateRetired {
			continue
		}
		if k.Private == nil {
			return nil, fmt.Errorf("key %s is %s but has no private key", k.ID, k.State)
		}
		if files[PrivateKeyFile(k.ID)], err = encodePrivateKey(k.ID, k.Private); err != nil {
			return nil, err
		}
		if k.Refresh != nil {
			if k.Refresh.Private == nil {
				return nil, fmt.Errorf("key %s is %s but its refresh key has no private key", k.ID, k.State)
			}
			if files[RefreshPrivateKeyFile(k.ID)], err = encodePrivateKey(k.ID, k.Refresh.Private); err != nil {
				return nil, err
			}
		}
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	files[ManifestFile] = append(manifest, '\n')
	return files, nil
}

// encodePublic renders the PKIX PEM public key file of k.
func encodePublic(k keydomain.Key) ([]byte, error) { return encodePublicKey(k.ID, k.Public) }

// encodePublicKey renders pub, a public key of kid's, as a PKIX PEM file.
func encodePublicKey(kid string, pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key %s: encoding public key: %w", kid, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// encodePrivateKey renders priv, a private key of kid's, as a PKCS#8 PEM file.
func encodePrivateKey(kid string, priv *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: encoding private key: %w", kid, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
