package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hiringo/auth-operator/internal/release"
)

func main() {
	var o release.Options
	var imagePlatforms, pluginPlatforms string
	flag.StringVar(&o.Version, "version", "", "the release's version, vMAJOR.MINOR.PATCH[-PRERELEASE]")
	flag.StringVar(&o.Revision, "revision", "", "the commit released (the image's revision label)")
	flag.StringVar(&o.Module, "module", ".", "the auth-operator checkout")
	flag.StringVar(&o.Out, "out", "dist/release", "where the release's files go (emptied first)")
	flag.StringVar(&imagePlatforms, "image-platforms", "linux/amd64,linux/arm64", "the operator image's platforms")
	flag.StringVar(&pluginPlatforms, "plugin-platforms", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64", "the plugin's platforms")
	flag.StringVar(&o.Kustomize, "kustomize", "bin/kustomize", "the pinned kustomize")
	flag.StringVar(&o.Helm, "helm", "bin/helm", "the pinned helm")
	flag.StringVar(&o.SBOMTool, "sbom-tool", "bin/cyclonedx-gomod", "the pinned cyclonedx-gomod")
	flag.Parse()
	o.ImagePlatforms = strings.Split(imagePlatforms, ",")
	o.PluginPlatforms = strings.Split(pluginPlatforms, ",")
	for _, p := range []*string{&o.Module, &o.Out, &o.Kustomize, &o.Helm, &o.SBOMTool} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "release:", err)
			os.Exit(2)
		}
		*p = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := release.Build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	fmt.Printf("release %s in %s\n  image %s (%s), archive %s\n  chart %s\n  install %s\n  plugin %d archives, krew manifest %s\n  SBOMs %s\n  checksums %s\n",
		o.Version, o.Out, a.Image, a.ImageDigest, filepath.Base(a.ImageArchive), filepath.Base(a.Chart), filepath.Base(a.InstallYAML),
		len(a.Plugins), filepath.Base(a.KrewManifest), strings.Join(baseNames(a.SBOMs), ", "), filepath.Base(a.Checksums))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
