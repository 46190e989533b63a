package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// pluginName is the plugin's name for kubectl and krew (kubectl authsvc).
const pluginName = "authsvc"

// downloadBase is where the release's files are published (GitHub releases); the krew
// manifest's URIs point there.
const downloadBase = "https://github.com/hiringo/auth-operator/releases/download"

// buildPlugin builds kubectl-authsvc for every plugin platform as archives (the binary and
// the LICENSE, fixed times) and writes the krew manifest that names their sha256.
func buildPlugin(ctx context.Context, o Options, work string) (archives []string, manifest string, err error) {
	license, err := os.ReadFile(filepath.Join(o.Module, "LICENSE"))
	if err != nil {
		return nil, "", err
	}
	var platforms []krewPlatform
	for _, platform := range o.PluginPlatforms {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok {
			return nil, "", fmt.Errorf("plugin platform %q is not os/arch", platform)
		}
		dir := filepath.Join(work, "plugin", goos+"-"+goarch)
		if err := imagebuild.GoBuild(ctx, o.Module, dir, goos, goarch, o.Version, "./cmd/kubectl-authsvc"); err != nil {
			return nil, "", err
		}
		binary, err := os.ReadFile(filepath.Join(dir, "kubectl-authsvc"))
		if err != nil {
			return nil, "", err
		}
		name := fmt.Sprintf("kubectl-authsvc-%s-%s-%s.tar.gz", o.Version, goos, goarch)
		data, err := tarGz([]tarFile{{"kubectl-authsvc", 0o755, binary}, {"LICENSE", 0o644, license}})
		if err != nil {
			return nil, "", err
		}
		path := filepath.Join(o.Out, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, "", err
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, "", err
		}
		archives = append(archives, path)
		platforms = append(platforms, krewPlatform{
			Selector: krewSelector{MatchLabels: map[string]string{"os": goos, "arch": goarch}},
			URI:      downloadBase + "/" + o.Version + "/" + name,
			SHA256:   sum,
			Bin:      "kubectl-authsvc",
		})
	}
	data, err := yaml.Marshal(krewManifest(o.Version, platforms))
	if err != nil {
		return nil, "", err
	}
	manifest = filepath.Join(o.Out, "krew-"+pluginName+".yaml")
	return archives, manifest, os.WriteFile(manifest, data, 0o644)
}

// The krew plugin manifest (krew.googlecontainertools.github.com/v1alpha2 Plugin).
type krewPlugin struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   krewMetadata `json:"metadata"`
	Spec       krewSpec     `json:"spec"`
}

type krewMetadata struct {
	Name string `json:"name"`
}

type krewSpec struct {
	Version          string         `json:"version"`
	Homepage         string         `json:"homepage"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector krewSelector `json:"selector"`
	URI      string       `json:"uri"`
	SHA256   string       `json:"sha256"`
	Bin      string       `json:"bin"`
}

type krewSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

func krewManifest(version string, platforms []krewPlatform) krewPlugin {
	return krewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   krewMetadata{Name: pluginName},
		Spec: krewSpec{
			Version:          version,
			Homepage:         "https://github.com/hiringo/auth-operator",
			ShortDescription: "Operate auth-operator AuthServices: keys, rotation, revocation, user logout",
			Description: "kubectl authsvc shows an AuthService's keys and readiness, asks the operator for a key\n" +
				"rotation and waits for it, revokes a compromised key and ends every session of a user.\n",
			Platforms: platforms,
		},
	}
}

// tarFile is one file of an archive.
type tarFile struct {
	name string
	mode int64
	data []byte
}

// tarGz makes a gzipped tar of files with fixed times and owners.
func tarGz(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: imagebuild.Epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
