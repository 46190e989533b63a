package keyfiles

import (
	"time"

	"github.com/hiringo/auth-operator/internal/atomicdir"
)

// WriteMounted writes a set into dir the way the kubelet updates a mounted Secret: the
// files go into a new hidden timestamped folder, a "..data" symlink is swapped to it
// atomically, every file name is a symlink through "..data", and the previous folder is
// removed. Local runs and tests use it to rotate keys under a running server exactly as
// a cluster would.
func WriteMounted(dir string, s Set) error {
	files, err := Encode(s)
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
