package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// OperatorImage is the operator's image `make dev` and the e2e build: the reference
// dist/install.yaml and the Makefile's IMG name.
const OperatorImage = imagebuild.OperatorRepository + ":dev"

// BuildOperatorImage builds the operator's image (for this machine's platform, from the
// checkout at repo) as OperatorImage into dir and returns its archive.
func BuildOperatorImage(ctx context.Context, repo, dir string) (string, error) {
	idx, err := imagebuild.BuildOperator(ctx, imagebuild.OperatorBuild{
		Module: repo, BinDir: filepath.Join(dir, "bin"),
		Platforms: []string{"linux/" + runtime.GOARCH},
		Version:   "dev", Revision: GitRevision(repo),
	})
	if err != nil {
		return "", err
	}
	archive := filepath.Join(dir, "auth-operator.oci.tar")
	return archive, imagebuild.WriteArchiveFile(archive, OperatorImage, idx)
}

// BuildRedisImage builds the managed Redis's image from the machine's Debian packages as
// imagebuild.RedisImage into dir and returns its archive.
func BuildRedisImage(repo, dir string) (string, error) {
	redis, err := imagebuild.Redis(imagebuild.Labels("auth-operator-redis", "Debian's Redis and Sentinel for the managed Redis of the local node", "7.0-bookworm", GitRevision(repo)))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	archive := filepath.Join(dir, "redis.oci.tar")
	if err := imagebuild.WriteArchiveFile(archive, imagebuild.RedisImage, redis); err != nil {
		return "", fmt.Errorf("redis image: %w", err)
	}
	return archive, nil
}

// GitRevision is the checkout's commit, or "" outside a git checkout.
func GitRevision(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// NodeMinKeyPublishTime is a minimum publish time of a next key that suits the local node:
// its kubelet (syncFrequency 10 s, Secrets watched) updates a mounted Secret within about
// 15 s, where a cluster's default configuration takes a minute or two.
const NodeMinKeyPublishTime = 30 * time.Second
