package cluster

import (
	"context"
	"fmt"
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
// node's platform, where pods with imagePullPolicy Never or IfNotPresent find them.
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	for _, a := range archives {
		if _, err := os.Stat(a); err != nil {
			return err
		}
		if _, err := c.ctr(ctx, "images", "import", "--platform", "linux/"+runtime.GOARCH, a); err != nil {
			return fmt.Errorf("importing %s: %w", a, err)
		}
	}
	return nil
}
