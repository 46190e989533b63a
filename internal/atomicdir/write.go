package atomicdir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	// dataDirName is the symlink that points at the current timestamped folder.
	dataDirName = "..data"
	// newDataDirName is the name under which the next "..data" link is made before the
	// rename that swaps it in.
	newDataDirName = "..data_tmp"
)

// File is one file of the directory: its content and mode.
type File struct {
	Data []byte
	Mode os.FileMode
}

// Write lays files out under dir the way the kubelet writes a Secret or ConfigMap
// volume: the content goes into a fresh folder named "..YYYY_MM_DD_hh_mm_ss.<digits>", a
// "..data" symlink is swapped to it by an atomic rename, and each top-level name is a
// symlink "name -> ..data/name". A reader that resolves paths through the per-key links
// sees either the whole old set or the whole new set, never a mix. Nothing is written when
// the content is unchanged; the result says whether the directory changed.
func Write(dir string, files map[string]File, now time.Time) (bool, error) {
	for name := range files {
		if err := ValidatePath(name); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("creating volume directory: %w", err)
	}
	oldTarget, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("reading %s link: %w", dataDirName, err)
	}
	if oldTarget != "" && sameContent(filepath.Join(dir, oldTarget), files) {
		return false, nil
	}

	tsDir, err := os.MkdirTemp(dir, now.UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, fmt.Errorf("creating timestamped folder: %w", err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, fmt.Errorf("setting mode of timestamped folder: %w", err)
	}
	for name, f := range files {
		path := filepath.Join(tsDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return false, fmt.Errorf("creating folder for %s: %w", name, err)
		}
		if err := os.WriteFile(path, f.Data, f.Mode); err != nil {
			return false, fmt.Errorf("writing %s: %w", name, err)
		}
		// WriteFile honours the umask; the kubelet sets the mode exactly.
		if err := os.Chmod(path, f.Mode); err != nil {
			return false, fmt.Errorf("setting mode of %s: %w", name, err)
		}
	}

	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("removing stale %s: %w", newDataDirName, err)
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, fmt.Errorf("linking %s: %w", newDataDirName, err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, fmt.Errorf("swapping %s: %w", dataDirName, err)
	}

	if err := syncUserLinks(dir, files); err != nil {
		return false, err
	}
	if oldTarget != "" && oldTarget != filepath.Base(tsDir) {
		if err := os.RemoveAll(filepath.Join(dir, oldTarget)); err != nil {
			return false, fmt.Errorf("removing old timestamped folder: %w", err)
		}
	}
	return true, nil
}

// ValidatePath rejects the paths the API server rejects in volume items and subPaths:
// absolute paths, ".." elements and names starting with "..".
func ValidatePath(name string) error {
	switch {
	case name == "":
		return errors.New("projected file has an empty path")
	case filepath.IsAbs(name):
		return fmt.Errorf("projected file %q: path must be relative", name)
	case strings.HasPrefix(name, ".."):
		return fmt.Errorf("projected file %q: path must not start with \"..\"", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return fmt.Errorf("projected file %q: path must not contain \"..\"", name)
		}
	}
	return nil
}

// sameContent reports whether folder holds exactly files, with the same bytes and modes.
func sameContent(folder string, files map[string]File) bool {
	count := 0
	walkErr := filepath.WalkDir(folder, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(folder, path)
		if err != nil {
			return err
		}
		want, ok := files[filepath.ToSlash(rel)]
		if !ok {
			return errors.New("extra file")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != want.Mode.Perm() {
			return errors.New("mode differs")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, want.Data) {
			return errors.New("content differs")
		}
		count++
		return nil
	})
	return walkErr == nil && count == len(files)
}

// syncUserLinks makes a "name -> ..data/name" link for every top-level name of files and
// removes the links of names that are gone.
func syncUserLinks(dir string, files map[string]File) error {
	want := map[string]bool{}
	for name := range files {
		want[strings.SplitN(name, "/", 2)[0]] = true
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		link := filepath.Join(dir, n)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, n), link); err != nil {
			return fmt.Errorf("linking %s: %w", n, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading volume directory: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") || want[n] {
			continue
		}
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("removing link %s: %w", n, err)
		}
	}
	return nil
}
