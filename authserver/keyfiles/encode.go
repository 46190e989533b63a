package keyfiles

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
)

// Encode renders a set as the files of its layout: the manifest, a public key file for
// every key and a private key file for next and active keys only. A retired key's
// private part is never written, even when the caller still holds it.
func Encode(s Set) (map[string][]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	files := make(map[string][]byte, 2*len(s.Keys)+1)
	m := Manifest{Version: ManifestVersion, Algorithm: AlgorithmES256, Keys: make([]KeyMeta, 0, len(s.Keys))}
	for _, k := range s.Keys {
		m.Keys = append(m.Keys, k.KeyMeta)
		pub, err := encodePublic(k)
		if err != nil {
			return nil, err
		}
		files[PublicKeyFile(k.ID)] = pub
		if k.State == StateRetired {
			continue
		}
		if k.Private == nil {
			return nil, fmt.Errorf("key %s is %s but has no private key", k.ID, k.State)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("key %s: encoding private key: %w", k.ID, err)
		}
		files[PrivateKeyFile(k.ID)] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	files[ManifestFile] = append(manifest, '\n')
	return files, nil
}

// encodePublic renders the PKIX PEM public key file of k.
func encodePublic(k Key) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("key %s: encoding public key: %w", k.ID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
