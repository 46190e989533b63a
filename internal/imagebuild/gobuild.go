package imagebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// VersionVariable is the linker name of the release version the binaries report.
const VersionVariable = "github.com/hiringo/auth-operator/internal/version.Version"

// GoBuild builds the main packages pkgs of the module at dir for goos/goarch into outDir,
// as the images hold them: static (CGO_ENABLED=0), without local paths (-trimpath), stripped,
// and stamped with version. One go build for all packages, which share most of their
// dependencies. The binaries are at outDir/<last element of the package path>.
func GoBuild(ctx context.Context, dir, outDir, goos, goarch, version string, pkgs ...string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X " + VersionVariable + "=" + version, "-o", outDir + string(filepath.Separator)}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOOS=%s GOARCH=%s go build %s: %w\n%s", goos, goarch, strings.Join(pkgs, " "), err, out)
	}
	return nil
}
