package imagebuild

import (
	"fmt"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NonRootUID is the user the operator's image runs as (distroless' "nonroot").
const NonRootUID = 65532

// CACertificates is the host's CA bundle (Debian's ca-certificates) that the images carry, so
// the binaries can reach TLS endpoints (an external Redis, an OTLP collector).
const CACertificates = "/etc/ssl/certs/ca-certificates.crt"

// OperatorBinaries are the static binaries of one platform that the operator's image holds.
type OperatorBinaries struct {
	OS, Architecture string
	// Manager and AuthServer are host paths of `manager` and `authserver` built for the
	// platform (CGO_ENABLED=0).
	Manager, AuthServer string
}

// Operator builds the operator's image for one platform: /manager (the entrypoint) and
// /authserver, which the operator deploys from its own image, the CA bundle, and the
// unprivileged user 65532. labels are the OCI labels (see Labels).
func Operator(bins OperatorBinaries, labels map[string]string) (v1.Image, error) {
	entries, err := Merge(
		[]Entry{
			HostFile("/manager", 0o755, bins.Manager),
			HostFile("/authserver", 0o755, bins.AuthServer),
			HostFile(CACertificates, 0o644, CACertificates),
			Dir("/tmp", 0o1777, 0, 0),
		},
		Users("nonroot", NonRootUID, "/home/nonroot"),
	)
	if err != nil {
		return nil, err
	}
	layer, err := Layer(entries)
	if err != nil {
		return nil, fmt.Errorf("operator image for %s/%s: %w", bins.OS, bins.Architecture, err)
	}
	uid := strconv.Itoa(NonRootUID)
	return Image(Config{
		OS: bins.OS, Architecture: bins.Architecture,
		User:       uid + ":" + uid,
		Entrypoint: []string{"/manager"},
		WorkingDir: "/",
		Labels:     labels,
	}, layer)
}

// Labels are the OCI labels of the project's images.
func Labels(title, description, version, revision string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.source":      "https://github.com/hiringo/auth-operator",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
	}
}
