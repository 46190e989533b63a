package imagebuild

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// The annotations of an OCI layout's index.json that name an image: containerd's
// (`ctr images import` takes the name from it) and the OCI one (the tag).
const (
	ContainerdImageNameAnnotation = "io.containerd.image.name"
	ociRefNameAnnotation          = "org.opencontainers.image.ref.name"
)

// WriteArchive writes idx as a tar of an OCI image layout, named ref in its index.json
// (a fully qualified reference, "ghcr.io/hiringo/auth-operator:v0.1.0", which `ctr images
// import` records as is). Files are in path order with fixed times: an equal index gives
// an equal archive.
func WriteArchive(w io.Writer, ref string, idx v1.ImageIndex) error {
	tag, err := tagOf(ref)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "imagebuild-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		ContainerdImageNameAnnotation: ref,
		ociRefNameAnnotation:          tag,
	})); err != nil {
		return fmt.Errorf("archive: writing %s: %w", ref, err)
	}
	return tarDir(w, dir)
}

// tagOf checks that ref names a registry host and a tag, and returns the tag.
func tagOf(ref string) (string, error) {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		return "", fmt.Errorf("archive: image reference %q must start with a registry host (ghcr.io/..., localhost/...)", ref)
	}
	colon := strings.LastIndex(rest, ":")
	if colon < 0 || strings.Contains(rest[colon:], "/") || colon == len(rest)-1 {
		return "", fmt.Errorf("archive: image reference %q must end with a tag (:v0.1.0)", ref)
	}
	return rest[colon+1:], nil
}

// tarDir writes the files under dir as a tar, in path order, with fixed times and owners.
func tarDir(w io.Writer, dir string) error {
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: Epoch, Mode: 0o644}
		if info.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteArchiveFile writes the image or index img, named ref, as an OCI layout archive at
// path (see WriteArchive). A single image is wrapped in an index of its one platform.
func WriteArchiveFile(path, ref string, img any) error {
	var idx v1.ImageIndex
	switch v := img.(type) {
	case v1.ImageIndex:
		idx = v
	case v1.Image:
		var err error
		if idx, err = Index(nil, v); err != nil {
			return err
		}
	default:
		return fmt.Errorf("archive: %T is neither an image nor an index", img)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteArchive(f, ref, idx); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
