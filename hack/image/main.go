package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

func main() {
	ref := flag.String("ref", imagebuild.OperatorRepository+":dev", "the image's reference, with a registry host and a tag")
	out := flag.String("out", "dist/auth-operator.oci.tar", "the archive to write")
	platforms := flag.String("platforms", "linux/"+runtime.GOARCH, "comma-separated os/arch of the image index")
	version := flag.String("version", "dev", "the version stamped into the binaries and labels")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := build(ctx, *ref, *out, strings.Split(*platforms, ","), *version); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(ctx context.Context, ref, out string, platforms []string, version string) error {
	bins, err := os.MkdirTemp("", "auth-operator-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bins)
	revision, _ := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	idx, err := imagebuild.BuildOperator(ctx, imagebuild.OperatorBuild{
		Module: ".", BinDir: bins, Platforms: platforms, Version: version, Revision: strings.TrimSpace(string(revision)),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := imagebuild.WriteArchiveFile(out, ref, idx); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s (%s) for %s written to %s\n", ref, digest, strings.Join(platforms, ", "), out)
	return nil
}
