package keyfiles

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// PublicProjection renders the public files of the keys of s whose access window is open
// at now: the manifest (same format as Encode's, listing only those keys) and a public key
// file for each. It never writes a private key file, whatever s holds. The operator
// stores it in the ConfigMap that the verifiers mount.
func PublicProjection(s keydomain.Set, now time.Time) (map[string][]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	published := s.Published(now)
	files := make(map[string][]byte, len(published.Keys)+1)
	m := Manifest{Version: ManifestVersion, Algorithm: AlgorithmES256, Keys: make([]keydomain.KeyMeta, 0, len(published.Keys))}
	for _, k := range published.Keys {
		m.Keys = append(m.Keys, k.KeyMeta)
		pub, err := encodePublic(k)
		if err != nil {
			return nil, err
		}
		files[PublicKeyFile(k.ID)] = pub
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	files[ManifestFile] = append(manifest, '\n')
	return files, nil
}
