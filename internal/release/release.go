package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// Options say what to build.
type Options struct {
	// Module is the auth-operator checkout to release.
	Module string
	// Version is the release's version, vMAJOR.MINOR.PATCH with an optional -PRERELEASE.
	Version string
	// Revision is the commit released, written into the image's labels.
	Revision string
	// Out receives the release's files (dist/release); it is emptied first.
	Out string
	// ImagePlatforms are the operator image's platforms ("linux/amd64").
	ImagePlatforms []string
	// PluginPlatforms are the platforms the plugin is built for; none skips the plugin.
	PluginPlatforms []string
	// Kustomize and Helm are the pinned tools; SBOMTool is cyclonedx-gomod, "" skips the SBOMs.
	Kustomize, Helm, SBOMTool string
}

// Artifacts are the files of a built release.
type Artifacts struct {
	// Image is the operator image's reference by tag, and ImageDigest its index's digest.
	Image, ImageDigest string
	// ImageArchive is the image as an OCI layout archive.
	ImageArchive string
	// Chart is the packaged chart, InstallYAML the kubectl install.
	Chart, InstallYAML string
	// Plugins are the plugin's archives, KrewManifest its krew manifest.
	Plugins      []string
	KrewManifest string
	// SBOMs are CycloneDX SBOMs of the image's binaries.
	SBOMs []string
	// Checksums is checksums.txt: the sha256 of every other file.
	Checksums string
}

// PinnedImage is the image reference by digest that the chart and install.yaml name.
func (a Artifacts) PinnedImage() string {
	return imagebuild.OperatorRepository + "@" + a.ImageDigest
}

// semver is a release version: vMAJOR.MINOR.PATCH[-PRERELEASE].
var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// Build builds the release into o.Out.
func Build(ctx context.Context, o Options) (Artifacts, error) {
	if !semver.MatchString(o.Version) {
		return Artifacts{}, fmt.Errorf("release version %q is not vMAJOR.MINOR.PATCH[-PRERELEASE] (for example v0.1.0)", o.Version)
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return Artifacts{}, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return Artifacts{}, err
	}
	work, err := os.MkdirTemp("", "auth-operator-release-")
	if err != nil {
		return Artifacts{}, err
	}
	defer os.RemoveAll(work)

	var a Artifacts
	a.Image = imagebuild.OperatorRepository + ":" + o.Version
	bins := filepath.Join(work, "bin")
	idx, err := imagebuild.BuildOperator(ctx, imagebuild.OperatorBuild{
		Module: o.Module, BinDir: bins, Platforms: o.ImagePlatforms, Version: o.Version, Revision: o.Revision,
	})
	if err != nil {
		return Artifacts{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return Artifacts{}, err
	}
	a.ImageDigest = digest.String()
	a.ImageArchive = filepath.Join(o.Out, "auth-operator-"+o.Version+".oci.tar")
	if err := imagebuild.WriteArchiveFile(a.ImageArchive, a.Image, idx); err != nil {
		return Artifacts{}, err
	}
	if a.InstallYAML, err = installYAML(ctx, o, work, a.PinnedImage()); err != nil {
		return Artifacts{}, err
	}
	if a.Chart, err = packageChart(ctx, o, work, a.ImageDigest); err != nil {
		return Artifacts{}, err
	}
	if len(o.PluginPlatforms) > 0 {
		if a.Plugins, a.KrewManifest, err = buildPlugin(ctx, o, work); err != nil {
			return Artifacts{}, err
		}
	}
	if o.SBOMTool != "" {
		dir := filepath.Join(bins, strings.ReplaceAll(o.ImagePlatforms[0], "/", "-"))
		if a.SBOMs, err = sboms(ctx, o, dir); err != nil {
			return Artifacts{}, err
		}
	}
	if a.Checksums, err = writeChecksums(o.Out); err != nil {
		return Artifacts{}, err
	}
	return a, nil
}

// run runs a tool in dir and returns its error with its output.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee := new(exec.ExitError); errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// copyTree copies the regular files and folders under src to dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// installYAML renders config/default with the manager's image pinned by digest, in a copy of
// config/ (the checkout's kustomization keeps its tag).
func installYAML(ctx context.Context, o Options, work, image string) (string, error) {
	config := filepath.Join(work, "config")
	if err := copyTree(filepath.Join(o.Module, "config"), config); err != nil {
		return "", err
	}
	if _, err := run(ctx, filepath.Join(config, "manager"), o.Kustomize, "edit", "set", "image", "controller="+image); err != nil {
		return "", err
	}
	out, err := run(ctx, config, o.Kustomize, "build", "default")
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(out), "image: "+image) {
		return "", fmt.Errorf("install.yaml does not name %s", image)
	}
	path := filepath.Join(o.Out, "install.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

// packageChart packages charts/auth-operator at the release's version, with the image's tag
// and digest in its values, so that an install pulls exactly the released image.
func packageChart(ctx context.Context, o Options, work, digest string) (string, error) {
	chart := filepath.Join(work, "chart", "auth-operator")
	if err := copyTree(filepath.Join(o.Module, "charts", "auth-operator"), chart); err != nil {
		return "", err
	}
	valuesPath := filepath.Join(chart, "values.yaml")
	values, err := os.ReadFile(valuesPath)
	if err != nil {
		return "", err
	}
	pinned, err := pinImage(string(values), o.Version, digest)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(valuesPath, []byte(pinned), 0o644); err != nil {
		return "", err
	}
	chartVersion := strings.TrimPrefix(o.Version, "v")
	if _, err := run(ctx, work, o.Helm, "package", chart, "--version", chartVersion, "--app-version", o.Version, "--destination", o.Out); err != nil {
		return "", err
	}
	return filepath.Join(o.Out, "auth-operator-"+chartVersion+".tgz"), nil
}

// pinImage sets the image's tag and digest in the chart's values.yaml, whose image block
// holds `tag: ""` and `digest: ""` lines.
func pinImage(values, tag, digest string) (string, error) {
	for _, r := range []struct{ from, to string }{
		{"\n  tag: \"\"\n", fmt.Sprintf("\n  tag: %q\n", tag)},
		{"\n  digest: \"\"\n", fmt.Sprintf("\n  digest: %q\n", digest)},
	} {
		if strings.Count(values, r.from) != 1 {
			return "", fmt.Errorf("the chart's values.yaml has not exactly one line %q to pin the image with", strings.TrimSpace(r.from))
		}
		values = strings.Replace(values, r.from, r.to, 1)
	}
	return values, nil
}

// writeChecksums writes checksums.txt, `sha256sum` style, of every file in dir.
func writeChecksums(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "checksums.txt" {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		lines = append(lines, sum+"  "+e.Name())
	}
	sort.Strings(lines)
	path := filepath.Join(dir, "checksums.txt")
	return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// fileSHA256 is the hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
