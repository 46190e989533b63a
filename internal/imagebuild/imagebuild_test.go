package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerPaths lists the paths of a layer's tar in order, with their owners and modes.
func layerPaths(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v, want the epoch", h.Name, h.ModTime)
		}
		out = append(out, h.Name)
	}
}

func TestLayer_AddsParentsAndSortsByPath(t *testing.T) {
	l, err := Layer([]Entry{
		File("/etc/passwd", 0o644, []byte("x")),
		File("/a/b/c", 0o600, []byte("y")),
		Symlink("/lib", "usr/lib"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := layerPaths(t, l)
	want := []string{"a/", "a/b/", "a/b/c", "etc/", "etc/passwd", "lib"}
	if !slices.Equal(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
}

func TestLayer_RefusesBadPaths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
	}{
		{"relative path", []Entry{File("etc/passwd", 0o644, nil)}},
		{"the root", []Entry{Dir("/", 0o755, 0, 0)}},
		{"one path twice", []Entry{File("/x", 0o644, nil), File("/x/", 0o644, []byte("other"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Layer(tc.entries); err == nil {
				t.Error("Layer accepted it")
			}
		})
	}
}

func TestMerge_KeepsSharedEntriesOnceAndRefusesConflicts(t *testing.T) {
	lib := HostFile("/usr/lib/libc.so.6", 0o644, "/usr/lib/libc.so.6")
	got, err := Merge([]Entry{lib, File("/a", 0o755, nil)}, []Entry{lib})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("merged %d entries, want 2", len(got))
	}
	if _, err := Merge([]Entry{File("/a", 0o755, []byte("1"))}, []Entry{File("/a", 0o755, []byte("2"))}); err == nil {
		t.Error("Merge accepted two different files at one path")
	}
}

// binary writes a file standing for a built binary.
func binary(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func operatorIndex(t *testing.T, manager, authserver string) v1.ImageIndex {
	t.Helper()
	labels := Labels("auth-operator", "test", "v0.0.0-test", "abc")
	var imgs []v1.Image
	for _, arch := range []string{"arm64", "amd64"} {
		img, err := Operator(OperatorBinaries{OS: "linux", Architecture: arch, Manager: manager, AuthServer: authserver}, labels)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := Index(labels, imgs...)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestOperator_SameInputsSameDigest(t *testing.T) {
	manager, authserver := binary(t, "manager", "manager v1"), binary(t, "authserver", "authserver v1")
	first, err := operatorIndex(t, manager, authserver).Digest()
	if err != nil {
		t.Fatal(err)
	}
	second, err := operatorIndex(t, manager, authserver).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("two builds of the same binaries: %s and %s", first, second)
	}
	changed, err := operatorIndex(t, manager, binary(t, "authserver", "authserver v2")).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Error("another authserver binary gave the same digest")
	}
}

func TestOperator_ConfigRunsTheManagerAsNonRoot(t *testing.T) {
	idx := operatorIndex(t, binary(t, "manager", "m"), binary(t, "authserver", "a"))
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/manager"}) {
			t.Errorf("%s: user %q entrypoint %v", d.Platform, cfg.Config.User, cfg.Config.Entrypoint)
		}
		if cfg.Config.Labels["org.opencontainers.image.version"] != "v0.0.0-test" || cfg.Config.Labels["org.opencontainers.image.licenses"] != "Apache-2.0" {
			t.Errorf("%s: labels %v", d.Platform, cfg.Config.Labels)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: %d layers, %v", d.Platform, len(layers), err)
		}
		paths := layerPaths(t, layers[0])
		for _, want := range []string{"manager", "authserver", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"} {
			if !slices.Contains(paths, want) {
				t.Errorf("%s: no %s in %v", d.Platform, want, paths)
			}
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}
	if m.Annotations["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("index annotations %v", m.Annotations)
	}
}

func TestWriteArchive_NamesTheImageForContainerd(t *testing.T) {
	idx := operatorIndex(t, binary(t, "manager", "m"), binary(t, "authserver", "a"))
	var first, second bytes.Buffer
	if err := WriteArchive(&first, "ghcr.io/hiringo/auth-operator:v0.0.0-test", idx); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(&second, "ghcr.io/hiringo/auth-operator:v0.0.0-test", idx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("two archives of one index differ")
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&first)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests", len(index.Manifests))
	}
	anns := index.Manifests[0].Annotations
	if anns[ContainerdImageNameAnnotation] != "ghcr.io/hiringo/auth-operator:v0.0.0-test" || anns[ociRefNameAnnotation] != "v0.0.0-test" {
		t.Errorf("annotations %v", anns)
	}
	digest, _ := idx.Digest()
	if index.Manifests[0].Digest != digest {
		t.Errorf("index.json points at %s, the index is %s", index.Manifests[0].Digest, digest)
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Error("no oci-layout file")
	}
	if _, ok := files["blobs/sha256/"+digest.Hex]; !ok {
		t.Error("the index's blob is missing")
	}
}

func TestTagOf(t *testing.T) {
	for _, tc := range []struct {
		ref, tag string
		ok       bool
	}{
		{"ghcr.io/hiringo/auth-operator:v0.1.0", "v0.1.0", true},
		{"localhost:5000/x:dev", "dev", true},
		{"localhost/pause:1", "1", true},
		{"redis:7", "", false},
		{"ghcr.io/hiringo/auth-operator", "", false},
		{"localhost:5000/x", "", false},
	} {
		tag, err := tagOf(tc.ref)
		if (err == nil) != tc.ok || tag != tc.tag {
			t.Errorf("tagOf(%q) = %q, %v", tc.ref, tag, err)
		}
	}
}

func TestHostProgram_CarriesTheInterpreterAndLibraries(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	entries, err := HostProgram(sh)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
		if e.Mode&fs.ModeSymlink == 0 && e.Source == "" {
			t.Errorf("%s: neither a link nor a host file", e.Path)
		}
	}
	joined := strings.Join(paths, " ")
	for _, want := range []string{"libc.so.6", "ld-linux"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s among %v", want, paths)
		}
	}
}
