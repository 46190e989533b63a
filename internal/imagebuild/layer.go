package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the modification time of every file of a layer and the creation time of every
// image, so that a rebuild of the same inputs has the same digest.
var Epoch = time.Unix(0, 0).UTC()

// Entry is one file, directory or symbolic link of a layer.
type Entry struct {
	// Path is the absolute path in the image ("/manager").
	Path string
	// Mode holds the permission bits; fs.ModeDir marks a directory, fs.ModeSymlink a link.
	Mode fs.FileMode
	// UID and GID own the entry.
	UID, GID int
	// Data is the content of a regular file, unless Source is set.
	Data []byte
	// Source is a host file whose content the entry has.
	Source string
	// Link is the target of a symbolic link.
	Link string
}

// File is a regular file with the given content and permissions, owned by root.
func File(p string, mode fs.FileMode, data []byte) Entry {
	return Entry{Path: p, Mode: mode, Data: data}
}

// HostFile is a regular file copied from the host path src, owned by root.
func HostFile(p string, mode fs.FileMode, src string) Entry {
	return Entry{Path: p, Mode: mode, Source: src}
}

// Dir is a directory owned by uid:gid.
func Dir(p string, mode fs.FileMode, uid, gid int) Entry {
	return Entry{Path: p, Mode: fs.ModeDir | mode, UID: uid, GID: gid}
}

// Symlink is a symbolic link at p pointing at target.
func Symlink(p, target string) Entry {
	return Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// Layer builds an OCI layer (gzip) holding entries, in path order, every parent
// directory included (0755, root) unless an entry names it. Two entries with one path are
// an error. The tar has fixed times and owners, so equal entries give an equal digest.
func Layer(entries []Entry) (v1.Layer, error) {
	data, err := layerTar(entries)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// layerTar is the uncompressed tar of a layer.
func layerTar(entries []Entry) ([]byte, error) {
	byPath := map[string]Entry{}
	for _, e := range entries {
		p, err := cleanImagePath(e.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("layer: %s is listed twice", e.Path)
		}
		e.Path = p
		byPath[p] = e
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = Dir(dir, 0o755, 0, 0)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := writeEntry(tw, byPath[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cleanImagePath checks that p is absolute and returns it cleaned.
func cleanImagePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return "", fmt.Errorf("layer: path %q must be absolute and not the root", p)
	}
	return path.Clean(p), nil
}

func writeEntry(tw *tar.Writer, e Entry) error {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(e.Path, "/"),
		Mode:    int64(e.Mode.Perm()),
		Uid:     e.UID,
		Gid:     e.GID,
		ModTime: Epoch,
	}
	var data []byte
	switch {
	case e.Mode&fs.ModeDir != 0:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case e.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.Link
	default:
		hdr.Typeflag = tar.TypeReg
		data = e.Data
		if e.Source != "" {
			var err error
			if data, err = os.ReadFile(e.Source); err != nil {
				return fmt.Errorf("layer: reading %s for %s: %w", e.Source, e.Path, err)
			}
		}
		hdr.Size = int64(len(data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer: %s: %w", e.Path, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("layer: %s: %w", e.Path, err)
	}
	return nil
}
