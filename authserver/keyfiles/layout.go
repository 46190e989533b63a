package keyfiles

import "github.com/hiringo/auth-operator/authserver/keydomain"

// ManifestFile is the name of the file that lists every key of a set and its state.
const ManifestFile = "keyset.json"

// ManifestVersion is the version of the manifest format that this package writes.
const ManifestVersion = 1

// AlgorithmES256 is the only signing algorithm a key set holds today.
const AlgorithmES256 = "ES256"

// The key set's values are defined in keydomain, which does no I/O; these aliases keep
// this package's API whole for the tooling outside this repository that reads the layout.
type (
	// State is where a key stands in its lifecycle.
	State = keydomain.State
	// KeyMeta is the public metadata of one key, as the manifest records it.
	KeyMeta = keydomain.KeyMeta
	// Key is one key of a set: its metadata, its public key and, for next and active
	// keys, its private key.
	Key = keydomain.Key
	// Set is a whole key set, in manifest order.
	Set = keydomain.Set
	// RefreshKey is the never-published key pair that signs a key's refresh tokens.
	RefreshKey = keydomain.RefreshKey
)

const (
	// StateNext keys are published and verify, but do not sign yet.
	StateNext = keydomain.StateNext
	// StateActive is the one key that signs.
	StateActive = keydomain.StateActive
	// StateRetired keys verify tokens they signed earlier; their private part is gone.
	StateRetired = keydomain.StateRetired
)

// Manifest is the content of ManifestFile.
type Manifest struct {
	Version   int       `json:"version"`
	Algorithm string    `json:"alg"`
	Keys      []KeyMeta `json:"keys"`
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
