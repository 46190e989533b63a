package keyfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WriteMounted writes a set into dir the way the kubelet updates a mounted Secret: the
// files go into a new hidden timestamped folder, a "..data" symlink is swapped to it
// atomically (rename over the old link), every file name is a symlink through
// "..data", and the previous folder is removed. Local runs and tests use it to
// rotate keys under a running server exactly as a cluster would.
func WriteMounted(dir string, s Set) error {
	files, err := Encode(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	stamp := "..kubelet_" + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	stampDir := filepath.Join(dir, stamp)
	if err := os.Mkdir(stampDir, 0o755); err != nil {
		return fmt.Errorf("creating key folder: %w", err)
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key.pem") {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(stampDir, name), data, mode); err != nil {
			return fmt.Errorf("writing key file %s: %w", name, err)
		}
	}
	dataLink := filepath.Join(dir, "..data")
	old, _ := os.Readlink(dataLink)
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(stamp, tmpLink); err != nil {
		return fmt.Errorf("linking key folder: %w", err)
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		return fmt.Errorf("swapping ..data: %w", err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", name) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return fmt.Errorf("linking key file %s: %w", name, err)
		}
	}
	if err := removeStaleLinks(dir, files); err != nil {
		return err
	}
	if old != "" && old != stamp {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return fmt.Errorf("removing previous key folder: %w", err)
		}
	}
	return nil
}

// removeStaleLinks deletes the per-file links of keys that the new set no longer has.
func removeStaleLinks(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading key directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if _, keep := files[name]; !keep {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing stale key link %s: %w", name, err)
			}
		}
	}
	return nil
}
