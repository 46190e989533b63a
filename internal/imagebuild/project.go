package imagebuild

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The project's images.
const (
	// OperatorRepository is where the operator's image is published; its tag is the version.
	OperatorRepository = "ghcr.io/hiringo/auth-operator"
	// RedisImage is the managed Redis image built from Debian's packages that `make dev` and
	// the e2e name in spec.redis.managed.image (Debian 12 ships Redis 7.0).
	RedisImage = "ghcr.io/hiringo/auth-operator-redis:7.0-bookworm"
)

// OperatorBuild says which operator image to build.
type OperatorBuild struct {
	// Module is the auth-operator checkout.
	Module string
	// BinDir receives the binaries, in one folder per platform (linux-amd64/manager).
	BinDir string
	// Platforms are "os/arch" pairs ("linux/amd64", "linux/arm64").
	Platforms []string
	// Version is stamped into the binaries and the labels; Revision (the commit) into the
	// labels.
	Version, Revision string
}

// BuildOperator builds the manager and the auth server for every platform (one go build
// each) and returns the operator's image index.
func BuildOperator(ctx context.Context, b OperatorBuild) (v1.ImageIndex, error) {
	if len(b.Platforms) == 0 {
		return nil, fmt.Errorf("operator image: no platform")
	}
	labels := Labels("auth-operator", "Kubernetes operator for rotating ES256 signing keys, a Redis token blacklist and the auth server", b.Version, b.Revision)
	var images []v1.Image
	for _, platform := range b.Platforms {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok {
			return nil, fmt.Errorf("operator image: platform %q is not os/arch", platform)
		}
		dir := filepath.Join(b.BinDir, goos+"-"+goarch)
		if err := GoBuild(ctx, b.Module, dir, goos, goarch, b.Version, "./cmd/manager", "./cmd/authserver"); err != nil {
			return nil, err
		}
		img, err := Operator(OperatorBinaries{
			OS: goos, Architecture: goarch,
			Manager: filepath.Join(dir, "manager"), AuthServer: filepath.Join(dir, "authserver"),
		}, labels)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return Index(labels, images...)
}
