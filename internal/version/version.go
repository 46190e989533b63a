package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
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
