package keyfiles

import "github.com/hiringo/auth-operator/authserver/keydomain"

// ManifestFile is the name of the file that lists every key of a set and its state.
const ManifestFile = "keyset.json"

// ManifestVersion is the version of the manifest format that this package writes.
const ManifestVersion = 1

// AlgorithmES256 is the only signing algorithm a key set holds today.
const AlgorithmES256 = "ES256"

// Manifest is the content of ManifestFile.
type Manifest struct {
	Version   int                 `json:"version"`
	Algorithm string              `json:"alg"`
	Keys      []keydomain.KeyMeta `json:"keys"`
}

// PublicKeyFile is the name of the file holding the PKIX PEM public key of kid.
func PublicKeyFile(kid string) string { return kid + ".pub.pem" }

// PrivateKeyFile is the name of the file holding the PKCS#8 PEM private key of kid.
func PrivateKeyFile(kid string) string { return kid + ".key.pem" }

// RefreshPublicKeyFile is the name of the file holding the PKIX PEM public key of kid's
// refresh-token key. It is in the private key Secret only: the public projection and the
// JWKS never carry it.
func RefreshPublicKeyFile(kid string) string { return kid + ".refresh.pub.pem" }

// RefreshPrivateKeyFile is the name of the file holding the PKCS#8 PEM private key of
// kid's refresh-token key, present while kid is next or active.
func RefreshPrivateKeyFile(kid string) string { return kid + ".refresh.key.pem" }
