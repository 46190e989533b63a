package cluster

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// nodeImages builds the node's own images, the pause program (from the checkout at repo)
// and CoreDNS (from the control-plane folder), as archives in dir, and returns their paths.
func nodeImages(ctx context.Context, repo, controlPlane, dir string) ([]string, error) {
	binDir := filepath.Join(dir, "bin")
	if err := imagebuild.GoBuild(ctx, repo, binDir, "linux", runtime.GOARCH, "dev", "./test/cluster/pause"); err != nil {
		return nil, err
	}
	labels := imagebuild.Labels("auth-operator-node", "the local node's own images", "dev", "")
	specs := []struct {
		ref, name, binary string
		args              []string
	}{
		{PauseImage, "pause", filepath.Join(binDir, "pause"), nil},
		{CoreDNSImage, "coredns", filepath.Join(controlPlane, "coredns"), []string{"-conf", "/etc/coredns/Corefile"}},
	}
	var archives []string
	for _, s := range specs {
		img, err := imagebuild.Static("linux", runtime.GOARCH, s.name, s.binary, s.args, labels)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, s.name+".oci.tar")
		if err := imagebuild.WriteArchiveFile(path, s.ref, img); err != nil {
			return nil, err
		}
		archives = append(archives, path)
	}
	return archives, nil
}

// ctr runs containerd's client on the node's containerd, in the Kubernetes namespace.
func (c *Cluster) ctr(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--address", c.p.containerdSocket(), "--namespace", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, filepath.Join(c.opts.ControlPlaneDir, "ctr"), full...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ImportImages imports OCI image archives into the node's containerd, unpacked for the
// node's platform, where pods with imagePullPolicy Never or IfNotPresent find them, by tag and
// by digest (REPOSITORY@sha256:…, as a pull from a registry records them), so that manifests
// that pin an image by digest run it too.
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	for _, a := range archives {
		refs, err := archiveRefs(a)
		if err != nil {
			return err
		}
		if _, err := c.ctr(ctx, "images", "import", "--platform", "linux/"+runtime.GOARCH, a); err != nil {
			return fmt.Errorf("importing %s: %w", a, err)
		}
		for _, r := range refs {
			if _, err := c.ctr(ctx, "images", "tag", "--force", r.name, r.byDigest()); err != nil {
				return fmt.Errorf("naming %s by its digest: %w", r.name, err)
			}
		}
	}
	return nil
}

// archiveRef is an image an archive names, and its digest.
type archiveRef struct {
	name, digest string
}

// byDigest is the image's reference by digest: its repository @ its digest.
func (r archiveRef) byDigest() string {
	repo := r.name
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + r.digest
}

// archiveRefs reads the images an OCI layout archive names in its index.json.
func archiveRefs(path string) ([]archiveRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s has no index.json: not an OCI layout archive", path)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if h.Name != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return nil, fmt.Errorf("%s: index.json: %w", path, err)
		}
		var refs []archiveRef
		for _, m := range index.Manifests {
			if name := m.Annotations[imagebuild.ContainerdImageNameAnnotation]; name != "" {
				refs = append(refs, archiveRef{name: name, digest: m.Digest})
			}
		}
		return refs, nil
	}
}
