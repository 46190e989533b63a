package keyfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// ErrNoManifest is returned when the files hold no manifest at all, as in an empty or
// not yet populated directory.
var ErrNoManifest = errors.New("no " + ManifestFile + " in key set")

// Decode parses the files of a layout back into a set and checks it: every listed key
// has a public key whose thumbprint is its kid, next and active keys have the matching
// private key, retired keys have none, exactly one key is active. Files the manifest
// does not name are ignored.
func Decode(files map[string][]byte) (keydomain.Set, error) { return decode(files, true) }

func decode(files map[string][]byte, private bool) (keydomain.Set, error) {
	raw, ok := files[ManifestFile]
	if !ok {
		return keydomain.Set{}, ErrNoManifest
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return keydomain.Set{}, fmt.Errorf("parsing %s: %w", ManifestFile, err)
	}
	if m.Version != ManifestVersion {
		return keydomain.Set{}, fmt.Errorf("%s: unsupported version %d (want %d)", ManifestFile, m.Version, ManifestVersion)
	}
	if m.Algorithm != AlgorithmES256 {
		return keydomain.Set{}, fmt.Errorf("%s: unsupported algorithm %q (want %s)", ManifestFile, m.Algorithm, AlgorithmES256)
	}
	s := keydomain.Set{Keys: make([]keydomain.Key, 0, len(m.Keys))}
	for _, meta := range m.Keys {
		k, err := decodeKey(meta, files, private)
		if err != nil {
			return keydomain.Set{}, err
		}
		s.Keys = append(s.Keys, k)
	}
	if err := s.Validate(); err != nil {
		return keydomain.Set{}, err
	}
	return s, nil
}

// DecodePublic parses the public material of a layout, as a verifier holds it (the
// operator's public projection, or a full Secret of which it must not keep private
// keys): the manifest and each key's public file, checked as Decode checks them.
// Private key files are never parsed, even when present, and refresh-token keys are
// left out: nothing but the issuer verifies refresh tokens.
func DecodePublic(files map[string][]byte) (keydomain.Set, error) {
	public := make(map[string][]byte, len(files))
	for name, data := range files {
		if !strings.HasSuffix(name, ".key.pem") {
			public[name] = data
		}
	}
	return decode(public, false)
}

func decodeKey(meta keydomain.KeyMeta, files map[string][]byte, private bool) (keydomain.Key, error) {
	k := keydomain.Key{KeyMeta: meta}
	pubPEM, ok := files[PublicKeyFile(meta.ID)]
	if !ok {
		return keydomain.Key{}, fmt.Errorf("key %s: missing %s", meta.ID, PublicKeyFile(meta.ID))
	}
	pub, err := parsePublic(pubPEM)
	if err != nil {
		return keydomain.Key{}, fmt.Errorf("key %s: %w", meta.ID, err)
	}
	kid, err := KeyID(pub)
	if err != nil {
		return keydomain.Key{}, err
	}
	if kid != meta.ID {
		return keydomain.Key{}, fmt.Errorf("key %s: public key thumbprint is %s", meta.ID, kid)
	}
	k.Public = pub
	if !private {
		return k, nil
	}
	privPEM, hasPriv := files[PrivateKeyFile(meta.ID)]
	switch {
	case meta.State == keydomain.StateRetired && hasPriv:
		return keydomain.Key{}, fmt.Errorf("key %s is retired but its private key is still present", meta.ID)
	case meta.State != keydomain.StateRetired && !hasPriv:
		return keydomain.Key{}, fmt.Errorf("key %s is %s but %s is missing", meta.ID, meta.State, PrivateKeyFile(meta.ID))
	case hasPriv:
		priv, err := parsePrivate(privPEM)
		if err != nil {
			return keydomain.Key{}, fmt.Errorf("key %s: %w", meta.ID, err)
		}
		if !priv.PublicKey.Equal(pub) {
			return keydomain.Key{}, fmt.Errorf("key %s: private key does not match its public key", meta.ID)
		}
		k.Private = priv
	}
	refresh, err := decodeRefresh(meta, files)
	if err != nil {
		return keydomain.Key{}, err
	}
	k.Refresh = refresh
	return k, nil
}

// decodeRefresh parses the refresh-token key of meta's key, nil when the files have none
// (a set written before refresh keys existed): its public part, and its private part for
// next and active keys only, as for the key itself.
func decodeRefresh(meta keydomain.KeyMeta, files map[string][]byte) (*keydomain.RefreshKey, error) {
	pubPEM, hasPub := files[RefreshPublicKeyFile(meta.ID)]
	privPEM, hasPriv := files[RefreshPrivateKeyFile(meta.ID)]
	switch {
	case !hasPub && hasPriv:
		return nil, fmt.Errorf("key %s: %s without %s", meta.ID, RefreshPrivateKeyFile(meta.ID), RefreshPublicKeyFile(meta.ID))
	case !hasPub:
		return nil, nil
	case meta.State == keydomain.StateRetired && hasPriv:
		return nil, fmt.Errorf("key %s is retired but its refresh private key is still present", meta.ID)
	case meta.State != keydomain.StateRetired && !hasPriv:
		return nil, fmt.Errorf("key %s is %s but %s is missing", meta.ID, meta.State, RefreshPrivateKeyFile(meta.ID))
	}
	pub, err := parsePublic(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("key %s refresh key: %w", meta.ID, err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	r := &keydomain.RefreshKey{ID: id, Public: pub}
	if hasPriv {
		priv, err := parsePrivate(privPEM)
		if err != nil {
			return nil, fmt.Errorf("key %s refresh key: %w", meta.ID, err)
		}
		if !priv.PublicKey.Equal(pub) {
			return nil, fmt.Errorf("key %s: refresh private key does not match its public key", meta.ID)
		}
		r.Private = priv
	}
	return r, nil
}

func parsePublic(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("public key file is not a PEM \"PUBLIC KEY\" block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("public key is not an ECDSA P-256 key")
	}
	return pub, nil
}

func parsePrivate(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("private key file is not a PEM \"PRIVATE KEY\" block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("private key does not parse as PKCS#8")
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("private key is not an ECDSA P-256 key")
	}
	return priv, nil
}

// kubeletDataDir is the symlink through which the kubelet publishes a mounted Secret's
// current files; every update swaps it atomically to a new timestamped folder.
const kubeletDataDir = "..data"

// snapshotRetries bounds how often ReadDir starts again when the folder it was reading
// was swapped out and removed under it. The kubelet swaps a Secret's folder at most every
// sync period, so one retry nearly always suffices; the bound is generous because a
// reader descheduled on a loaded node can lose several races to a fast writer in a row.
const snapshotRetries = 10

// ReadDir reads a set from a directory laid out as a mounted Secret. When the directory
// has a "..data" link, the files are read from the one folder it resolves to, so an
// update swapped in mid-read cannot mix two versions nor remove a per-key link between
// listing and reading; a read that loses its folder to a newer swap starts again on the
// new one. A plain directory (WriteDir's) is read as it is. Entries whose names start
// with "." and sub-directories are skipped.
func ReadDir(dir string) (keydomain.Set, error) { return readDir(dir, true) }

// ReadPublicDir is ReadDir for a verifier: it reads the public material only and
// never opens a "*.key.pem" file (see DecodePublic).
func ReadPublicDir(dir string) (keydomain.Set, error) { return readDir(dir, false) }

func readDir(dir string, private bool) (keydomain.Set, error) {
	var err error
	for range snapshotRetries {
		var (
			files map[string][]byte
			src   string
		)
		files, src, err = readSnapshot(dir, private)
		if err == nil && swappedSince(dir, src) {
			// The folder was swapped out while it was listed: its removal may have
			// hidden some of its files from the listing without an error.
			err = os.ErrNotExist
		}
		if err == nil {
			if private {
				return Decode(files)
			}
			return DecodePublic(files)
		}
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	return keydomain.Set{}, fmt.Errorf("reading key directory: %w", err)
}

// swappedSince reports whether dir's "..data" link no longer resolves to src.
func swappedSince(dir, src string) bool {
	if src == dir {
		return false
	}
	target, err := filepath.EvalSymlinks(filepath.Join(dir, kubeletDataDir))
	return err != nil || target != src
}

// readSnapshot reads the files of dir's current "..data" folder, or of dir itself.
// Without private, "*.key.pem" files are skipped unopened.
func readSnapshot(dir string, private bool) (map[string][]byte, string, error) {
	src := dir
	if target, err := filepath.EvalSymlinks(filepath.Join(dir, kubeletDataDir)); err == nil {
		src = target
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, src, err
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || (!private && strings.HasSuffix(name, ".key.pem")) {
			continue
		}
		path := filepath.Join(src, name)
		info, err := os.Stat(path)
		if err != nil {
			return nil, src, err
		}
		if info.IsDir() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, src, err
		}
		files[name] = data
	}
	return files, src, nil
}
