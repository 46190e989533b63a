package imagebuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// libraryDirs are where the dynamic loader of a Debian system finds shared libraries.
var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// HostProgram returns the entries that run the host's dynamically linked program at path in
// an image: the program at its real path, every link on the way to it, its ELF interpreter
// and every shared library it needs, transitively, each at its real path with its links.
// Together with MergedUsr they make a root file system the program runs in.
func HostProgram(path string) ([]Entry, error) {
	c := closure{entries: map[string]Entry{}}
	if err := c.addFile(path, 0o755); err != nil {
		return nil, err
	}
	if err := c.addLibrariesOf(path); err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// MergedUsr are the links of a Debian root since bookworm (/lib → usr/lib and so on), where
// the paths an ELF file names (its interpreter /lib64/ld-linux-x86-64.so.2) lead.
func MergedUsr() []Entry {
	return []Entry{
		Symlink("/bin", "usr/bin"), Symlink("/sbin", "usr/sbin"),
		Symlink("/lib", "usr/lib"), Symlink("/lib64", "usr/lib64"),
	}
}

type closure struct {
	entries map[string]Entry
}

// addFile adds the file at host path p with its permissions: each symbolic link on the
// way as a link, the target as a file at its real path.
func (c *closure) addFile(p string, mode fs.FileMode) error {
	for range 16 {
		canonical, err := canonicalDir(p)
		if err != nil {
			return err
		}
		info, err := os.Lstat(canonical)
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if _, ok := c.entries[canonical]; !ok {
				c.entries[canonical] = HostFile(canonical, mode|info.Mode().Perm()&0o755, canonical)
			}
			return nil
		}
		target, err := os.Readlink(canonical)
		if err != nil {
			return err
		}
		c.entries[canonical] = Symlink(canonical, target)
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(canonical), target)
		}
		p = target
	}
	return fmt.Errorf("%s: too many symbolic links", p)
}

// canonicalDir resolves the links of p's directory (/lib → /usr/lib), not of p itself.
func canonicalDir(p string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(p)), nil
}

// addLibrariesOf adds the interpreter and the needed libraries of the ELF file at p.
func (c *closure) addLibrariesOf(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		data := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(data, 0); err != nil {
			return fmt.Errorf("%s: reading the interpreter: %w", p, err)
		}
		interp := strings.TrimRight(string(data), "\x00")
		if err := c.addFile(interp, 0o755); err != nil {
			return fmt.Errorf("%s: interpreter %s: %w", p, interp, err)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, lib := range libs {
		found, err := findLibrary(lib)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", p, lib, err)
		}
		canonical, err := filepath.EvalSymlinks(found)
		if err != nil {
			return err
		}
		_, done := c.entries[canonical]
		if err := c.addFile(found, 0o644); err != nil {
			return err
		}
		if done {
			continue
		}
		if err := c.addLibrariesOf(canonical); err != nil {
			return err
		}
	}
	return nil
}

// findLibrary finds a library by its soname in libraryDirs.
func findLibrary(soname string) (string, error) {
	if filepath.IsAbs(soname) {
		return soname, nil
	}
	for _, dir := range libraryDirs {
		p := filepath.Join(dir, soname)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(libraryDirs, ", "))
}
