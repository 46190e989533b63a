package install

import (
	"context"
	"debug/elf"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// buildTimeout bounds the one `go build` of the image's binaries, which compiles client-go
// on a cold cache.
const buildTimeout = 10 * time.Minute

// imageBuild builds the image's binaries once per test run, with the image recipe's own go
// build (internal/imagebuild): static, trimmed paths, no symbols.
var imageBuild = struct {
	sync.Once
	dir string
	err error
}{}

// imageBinary returns /<name> of the operator's image (manager or authserver), built as the
// image recipe builds it for this machine's platform.
func imageBinary(t *testing.T, name string) string {
	t.Helper()
	imageBuild.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		imageBuild.dir = filepath.Join(tools.workDir, "image-binaries")
		imageBuild.err = imagebuild.GoBuild(ctx, tools.root, imageBuild.dir, "linux", runtime.GOARCH, "dev", "./cmd/manager", "./cmd/authserver")
	})
	if imageBuild.err != nil {
		t.Fatal(imageBuild.err)
	}
	return filepath.Join(imageBuild.dir, name)
}

// The image has no C library: the binaries must need none.
func TestImageBinaries_AreStatic(t *testing.T) {
	for _, name := range []string{"manager", "authserver"} {
		f, err := elf.Open(imageBinary(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("/%s is dynamically linked (program header %v): the image has no C library to run it", name, p.Type)
			}
		}
		if syms, err := f.Symbols(); err == nil && len(syms) > 0 {
			t.Errorf("/%s keeps %d symbols although the recipe strips them", name, len(syms))
		}
		f.Close()
	}
}
