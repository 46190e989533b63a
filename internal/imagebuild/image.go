package imagebuild

import (
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config is what an image's configuration says beside its layers.
type Config struct {
	// OS and Architecture are the image's platform ("linux", "amd64").
	OS, Architecture string
	// User runs the entrypoint ("65532:65532").
	User string
	// Entrypoint, Cmd, Env and WorkingDir are the process the image runs.
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	// Labels are the image's labels; the OCI ones (org.opencontainers.image.*) are also
	// written as the manifest's annotations, where registries show them.
	Labels map[string]string
	// ExposedPorts are documentation, as in a Dockerfile's EXPOSE ("6379/tcp").
	ExposedPorts []string
}

// Image builds an OCI image of the layers with cfg, created at Epoch.
func Image(cfg Config, layers ...v1.Layer) (v1.Image, error) {
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil, fmt.Errorf("image: OS and Architecture are required")
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	file, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	file = file.DeepCopy()
	file.OS, file.Architecture = cfg.OS, cfg.Architecture
	file.Created = v1.Time{Time: Epoch}
	file.Config.User = cfg.User
	file.Config.Entrypoint = cfg.Entrypoint
	file.Config.Cmd = cfg.Cmd
	file.Config.Env = cfg.Env
	file.Config.WorkingDir = cfg.WorkingDir
	file.Config.Labels = cfg.Labels
	if len(cfg.ExposedPorts) > 0 {
		file.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range cfg.ExposedPorts {
			file.Config.ExposedPorts[p] = struct{}{}
		}
	}
	// History, one entry per layer, as registries and `docker history` expect.
	file.History = nil
	for range layers {
		file.History = append(file.History, v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "auth-operator imagebuild"})
	}
	img, err = mutate.ConfigFile(img, file)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if anns := ociAnnotations(cfg.Labels); len(anns) > 0 {
		img = mutate.Annotations(img, anns).(v1.Image)
	}
	return img, nil
}

// ociAnnotations are the org.opencontainers.image.* labels.
func ociAnnotations(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if len(k) > len(ociPrefix) && k[:len(ociPrefix)] == ociPrefix {
			out[k] = v
		}
	}
	return out
}

const ociPrefix = "org.opencontainers.image."

// Index builds an OCI image index of images, one per platform, ordered by platform so
// that the order they are given in does not change the digest. annotations (the OCI
// labels of the images, usually) are set on the index too.
func Index(annotations map[string]string, images ...v1.Image) (v1.ImageIndex, error) {
	type entry struct {
		platform v1.Platform
		img      v1.Image
	}
	entries := make([]entry, 0, len(images))
	seen := map[string]bool{}
	for _, img := range images {
		file, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		p := v1.Platform{OS: file.OS, Architecture: file.Architecture, Variant: file.Variant}
		if seen[p.String()] {
			return nil, fmt.Errorf("index: two images for %s", p.String())
		}
		seen[p.String()] = true
		entries = append(entries, entry{platform: p, img: img})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].platform.String() < entries[j].platform.String() })
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, e := range entries {
		p := e.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: e.img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	if anns := ociAnnotations(annotations); len(anns) > 0 {
		idx = mutate.Annotations(idx, anns).(v1.ImageIndex)
	}
	return idx, nil
}
