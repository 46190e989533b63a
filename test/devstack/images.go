package devstack

import (
	"context"
	"fmt"
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

// BuildImages builds the operator's image (for this machine's platform, from the checkout
// at repo) and the Redis image into dir and returns the archives, for cluster.Options.Images.
func BuildImages(ctx context.Context, repo, dir string) ([]string, error) {
	revision := gitRevision(repo)
	idx, err := imagebuild.BuildOperator(ctx, imagebuild.OperatorBuild{
		Module: repo, BinDir: filepath.Join(dir, "bin"),
		Platforms: []string{"linux/" + runtime.GOARCH},
		Version:   "dev", Revision: revision,
	})
	if err != nil {
		return nil, err
	}
	operator := filepath.Join(dir, "auth-operator.oci.tar")
	if err := imagebuild.WriteArchiveFile(operator, OperatorImage, idx); err != nil {
		return nil, err
	}
	redis, err := imagebuild.Redis(imagebuild.Labels("auth-operator-redis", "Debian's Redis and Sentinel for the managed Redis of the local node", "7.0-bookworm", revision))
	if err != nil {
		return nil, err
	}
	redisArchive := filepath.Join(dir, "redis.oci.tar")
	if err := imagebuild.WriteArchiveFile(redisArchive, imagebuild.RedisImage, redis); err != nil {
		return nil, fmt.Errorf("redis image: %w", err)
	}
	return []string{operator, redisArchive}, nil
}

// gitRevision is the checkout's commit, or "" outside a git checkout.
func gitRevision(repo string) string {
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
