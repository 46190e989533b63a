package devkeys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/atomicdir"
)

// WriteDir writes a set's files (keyfiles.Encode) into dir, created if missing, private
// keys with mode 0600 and the rest 0644.
func WriteDir(dir string, s keydomain.Set) error {
	files, err := keyfiles.Encode(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, fileMode(name)); err != nil {
			return fmt.Errorf("writing key file %s: %w", name, err)
		}
	}
	return nil
}

// WriteMounted writes a set into dir the way the kubelet updates a mounted Secret: the
// files go into a new hidden timestamped folder, a "..data" symlink is swapped to it
// atomically, every file name is a symlink through "..data", and the previous folder is
// removed. Local runs and tests use it to rotate keys under a running server exactly as
// a cluster would.
func WriteMounted(dir string, s keydomain.Set) error {
	files, err := keyfiles.Encode(s)
	if err != nil {
		return err
	}
	projected := make(map[string]atomicdir.File, len(files))
	for name, data := range files {
		projected[name] = atomicdir.File{Data: data, Mode: fileMode(name)}
	}
	_, err = atomicdir.Write(dir, projected, time.Now())
	return err
}

// fileMode is the mode a layout file is written with: private keys 0600, the rest 0644.
func fileMode(name string) os.FileMode {
	if strings.HasSuffix(name, ".key.pem") {
		return 0o600
	}
	return 0o644
}
