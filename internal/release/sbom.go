package release

import (
	"context"
	"os"
	"path/filepath"
)

// sboms writes a CycloneDX SBOM of each binary of the image (from the module list the Go
// toolchain records in it) with cyclonedx-gomod, as sbom-<binary>.cdx.json.
func sboms(ctx context.Context, o Options, binDir string) ([]string, error) {
	var out []string
	for _, bin := range []string{"manager", "authserver"} {
		path := filepath.Join(o.Out, "sbom-"+bin+".cdx.json")
		if _, err := run(ctx, o.Module, o.SBOMTool, "bin", "-json", "-noserial", "-notimestamp",
			"-version", o.Version, "-output", path, filepath.Join(binDir, bin)); err != nil {
			return nil, err
		}
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}
