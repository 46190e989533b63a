package imagebuild

import (
	"fmt"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Static builds an image of one static program at /NAME (the entrypoint, with args as its
// default arguments), run by the unprivileged user 65532: the local node's pause and
// CoreDNS images.
func Static(goos, goarch, name, binary string, args []string, labels map[string]string) (v1.Image, error) {
	entries, err := Merge(
		[]Entry{HostFile("/"+name, 0o755, binary)},
		Users("nonroot", NonRootUID, "/"),
	)
	if err != nil {
		return nil, err
	}
	layer, err := Layer(entries)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", name, err)
	}
	uid := strconv.Itoa(NonRootUID)
	return Image(Config{
		OS: goos, Architecture: goarch,
		User:       uid + ":" + uid,
		Entrypoint: []string{"/" + name},
		Cmd:        args,
		WorkingDir: "/",
		Labels:     labels,
	}, layer)
}
