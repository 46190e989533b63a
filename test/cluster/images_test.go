package cluster

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

func TestArchiveRef_ByDigestKeepsTheRepositoryAndItsPort(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"ghcr.io/hiringo/auth-operator:v0.1.0", "ghcr.io/hiringo/auth-operator@sha256:ab"},
		{"localhost:5000/x:dev", "localhost:5000/x@sha256:ab"},
		{"localhost/auth-operator-node/pause:v1", "localhost/auth-operator-node/pause@sha256:ab"},
	} {
		if got := (archiveRef{name: tc.name, digest: "sha256:ab"}).byDigest(); got != tc.want {
			t.Errorf("%s by digest = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestArchiveRefs_ReadsTheNameAndDigestOfAnArchive(t *testing.T) {
	img, err := imagebuild.Static("linux", runtime.GOARCH, "true", "/bin/true", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "true.oci.tar")
	if err := imagebuild.WriteArchiveFile(path, "localhost/true:v1", img); err != nil {
		t.Fatal(err)
	}
	idx, err := imagebuild.Index(nil, img)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := idx.Digest()
	refs, err := archiveRefs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].name != "localhost/true:v1" || refs[0].digest != digest.String() {
		t.Fatalf("refs %+v, want localhost/true:v1 at %s", refs, digest)
	}
}
