package release

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

func TestPinImage(t *testing.T) {
	values := "image:\n  repository: r\n  tag: \"\"\n  digest: \"\"\n  pullPolicy: IfNotPresent\n"
	got, err := pinImage(values, "v1.2.3", "sha256:ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := "image:\n  repository: r\n  tag: \"v1.2.3\"\n  digest: \"sha256:ab\"\n  pullPolicy: IfNotPresent\n"; got != want {
		t.Errorf("pinned values:\n%s\nwant:\n%s", got, want)
	}
	if _, err := pinImage("image:\n  tag: v1\n", "v1.2.3", "sha256:ab"); err == nil {
		t.Error("pinned values without the lines to pin")
	}
}

func TestBuild_RefusesAVersionThatIsNotSemver(t *testing.T) {
	for _, v := range []string{"", "0.1.0", "v0.1", "v01.0.0", "v0.1.0+build", "latest"} {
		if _, err := Build(context.Background(), Options{Version: v, Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "vMAJOR.MINOR.PATCH") {
			t.Errorf("version %q: %v", v, err)
		}
	}
}

// tool is a pinned tool of the checkout's bin/ (make tools).
func tool(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: run `make tools` first: %v", name, err)
	}
	return p
}

// TestBuild_EveryArtefactOfARelease builds a release as `make release` does, for this
// machine's platform, and checks each artefact: checksums that verify, install.yaml and the
// packaged chart naming the image by digest, a krew manifest with the archives' sha256, SBOMs
// of the image's modules, binaries that report the version; and that a second build of the
// image has the same digest.
func TestBuild_EveryArtefactOfARelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs kustomize, helm and cyclonedx-gomod")
	}
	module, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	host := runtime.GOOS + "/" + runtime.GOARCH
	opts := Options{
		Module: module, Version: "v0.0.0-test", Revision: "0123456789abcdef", Out: filepath.Join(t.TempDir(), "release"),
		ImagePlatforms: []string{"linux/" + runtime.GOARCH}, PluginPlatforms: []string{host},
		Kustomize: tool(t, "kustomize"), Helm: tool(t, "helm"), SBOMTool: tool(t, "cyclonedx-gomod"),
	}
	a, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("checksums.txt lists every other file and verifies", func(t *testing.T) {
		entries, err := os.ReadDir(opts.Out)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]string{}
		f, err := os.Open(a.Checksums)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			sum, name, ok := strings.Cut(sc.Text(), "  ")
			if !ok {
				t.Fatalf("line %q is not `SUM  NAME`", sc.Text())
			}
			listed[name] = sum
		}
		for _, e := range entries {
			if e.Name() == "checksums.txt" {
				continue
			}
			got, err := fileSHA256(filepath.Join(opts.Out, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if listed[e.Name()] != got {
				t.Errorf("%s: listed %q, is %s", e.Name(), listed[e.Name()], got)
			}
			delete(listed, e.Name())
		}
		if len(listed) > 0 {
			t.Errorf("listed files that are not there: %v", listed)
		}
		for _, want := range []string{a.ImageArchive, a.Chart, a.InstallYAML, a.KrewManifest} {
			if _, err := os.Stat(want); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("install.yaml runs and deploys the image by digest", func(t *testing.T) {
		data, err := os.ReadFile(a.InstallYAML)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), a.PinnedImage()); n != 2 {
			t.Errorf("install.yaml names %s %d times, want 2 (the manager's image and AUTHSERVER_IMAGE)", a.PinnedImage(), n)
		}
		if strings.Contains(string(data), ":dev") {
			t.Error("install.yaml still names the :dev image")
		}
	})

	t.Run("the packaged chart is the release's and pins the image", func(t *testing.T) {
		show, err := exec.Command(opts.Helm, "show", "chart", a.Chart).Output()
		if err != nil {
			t.Fatal(err)
		}
		var chart struct{ Version, AppVersion string }
		if err := yaml.Unmarshal(show, &chart); err != nil {
			t.Fatal(err)
		}
		if chart.Version != "0.0.0-test" || chart.AppVersion != "v0.0.0-test" {
			t.Errorf("chart version %q appVersion %q", chart.Version, chart.AppVersion)
		}
		out, err := exec.Command(opts.Helm, "template", "ops", a.Chart, "--kube-version", "1.37.2").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(string(out), "image: "+a.PinnedImage()) && !strings.Contains(string(out), `image: "`+a.PinnedImage()+`"`) {
			t.Errorf("the chart renders no image %s", a.PinnedImage())
		}
	})

	t.Run("the krew manifest names each archive by its sha256", func(t *testing.T) {
		data, err := os.ReadFile(a.KrewManifest)
		if err != nil {
			t.Fatal(err)
		}
		var m krewPlugin
		if err := yaml.UnmarshalStrict(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Kind != "Plugin" || m.Metadata.Name != "authsvc" || m.Spec.Version != "v0.0.0-test" || len(m.Spec.Platforms) != len(a.Plugins) {
			t.Fatalf("manifest %+v", m)
		}
		for i, p := range m.Spec.Platforms {
			sum, err := fileSHA256(a.Plugins[i])
			if err != nil {
				t.Fatal(err)
			}
			if p.SHA256 != sum || !strings.HasSuffix(p.URI, "/v0.0.0-test/"+filepath.Base(a.Plugins[i])) {
				t.Errorf("platform %+v for %s (sha256 %s)", p, a.Plugins[i], sum)
			}
		}
	})

	t.Run("the plugin reports the version", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "kubectl-authsvc")
		extract(t, a.Plugins[0], "kubectl-authsvc", bin)
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), "kubectl-authsvc v0.0.0-test (commit ") {
			t.Errorf("--version: %q %v", out, err)
		}
	})

	t.Run("the SBOMs list the image's modules", func(t *testing.T) {
		if len(a.SBOMs) != 2 {
			t.Fatalf("SBOMs %v", a.SBOMs)
		}
		for _, path := range a.SBOMs {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var sbom struct {
				BOMFormat  string `json:"bomFormat"`
				Components []struct {
					Name    string `json:"name"`
					Version string `json:"version"`
				} `json:"components"`
			}
			if err := json.Unmarshal(data, &sbom); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, c := range sbom.Components {
				found = found || c.Name == "github.com/prometheus/client_golang"
			}
			if sbom.BOMFormat != "CycloneDX" || !found {
				t.Errorf("%s: format %q, %d components, client_golang among them: %v", path, sbom.BOMFormat, len(sbom.Components), found)
			}
		}
	})

	t.Run("the same sources build the same image", func(t *testing.T) {
		idx, err := imagebuild.BuildOperator(ctx, imagebuild.OperatorBuild{
			Module: module, BinDir: t.TempDir(), Platforms: opts.ImagePlatforms, Version: opts.Version, Revision: opts.Revision,
		})
		if err != nil {
			t.Fatal(err)
		}
		digest, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if digest.String() != a.ImageDigest {
			t.Errorf("a second build has digest %s, the release %s", digest, a.ImageDigest)
		}
	})
}

// extract writes the file name of a .tar.gz archive to dst.
func extract(t *testing.T, archive, name, dst string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no %s: %v", archive, name, err)
		}
		if h.Name != name {
			continue
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
		return
	}
}
