package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release version, set at link time by `make release` and the image recipe
// (-X github.com/hiringo/auth-operator/internal/version.Version=vX.Y.Z); "dev" otherwise.
var Version = "dev"

// Info is what a binary knows of its own build.
type Info struct {
	// Version is the release version ("dev" for an unreleased build).
	Version string
	// Commit is the git revision the binary was built from, with "-dirty" when the working
	// tree had changes; "unknown" when the build recorded none (go build outside a checkout).
	Commit string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{Version: Version, Commit: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.Commit = commitOf(bi.Settings)
	}
	return info
}

// commitOf reads the revision the go command stamps (vcs.revision, vcs.modified).
func commitOf(settings []debug.BuildSetting) string {
	commit, dirty := "unknown", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "unknown" {
		commit += "-dirty"
	}
	return commit
}

// String is the line `--version` prints: "NAME VERSION (commit COMMIT, GOVERSION)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}

// Collector is the build_info gauge of a binary (NAMESPACE_build_info, always 1), labelled
// with its version, commit and Go version, as Prometheus' own build_info metrics are: a
// dashboard joins on it to show which build serves.
func Collector(namespace string) prometheus.Collector {
	info := Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "The build of the binary: its version, commit and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.GoVersion},
	}, func() float64 { return 1 })
}
