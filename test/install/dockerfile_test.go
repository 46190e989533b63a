package install

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// dockerignorePatterns reads the exclusions of .dockerignore (no negations are used).
func dockerignorePatterns(t *testing.T) []string {
	t.Helper()
	var patterns []string
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, ".dockerignore")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: %q: teach dockerignored about negations", line)
		}
		patterns = append(patterns, filepath.Clean(line))
	}
	return patterns
}

// dockerignored reports whether Docker leaves path (relative to the context) out of the build
// context: a pattern matches the path or one of its parent folders; "**/" matches any depth.
func dockerignored(patterns []string, path string) bool {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for _, p := range patterns {
		anyDepth := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		for start := range parts {
			if start > 0 && !anyDepth {
				break
			}
			for end := start + 1; end <= len(parts); end++ {
				if ok, _ := filepath.Match(p, strings.Join(parts[start:end], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestDockerignored(t *testing.T) {
	patterns := []string{"bin", "*.md", "**/*_test.go", "**/testdata"}
	for path, want := range map[string]bool{
		"bin/manager":                    true,
		"README.md":                      true,
		"docs/keys-layout.md":            false,
		"controllers/keys_test.go":       true,
		"authserver/keyset/testdata/a":   true,
		"controllers/keys.go":            false,
		"cmd/manager/main.go":            false,
		"internal/keylifecycle/plan.go":  false,
		"authserver/binary/bin/whatever": false,
	} {
		if got := dockerignored(patterns, path); got != want {
			t.Errorf("dockerignored(%q) = %v, want %v", path, got, want)
		}
	}
}

// The image cannot be built here without a Docker engine; what can go wrong in the repository
// is checked instead: the binaries the Dockerfile builds are main packages, and every file they
// compile or embed reaches the build context.
func TestDockerfile_BuildsBothBinariesFromTheContext(t *testing.T) {
	dockerfile := string(readFile(t, "Dockerfile"))
	builds := regexp.MustCompile(`CGO_ENABLED=0 [^\n]*\n\s*go build ([^\n]*)-o /out/(\w+) (\./cmd/\w+)`).FindAllStringSubmatch(dockerfile, -1)
	var binaries, pkgs []string
	for _, b := range builds {
		flags, binary, pkg := strings.TrimSpace(b[1]), b[2], b[3]
		binaries = append(binaries, binary)
		pkgs = append(pkgs, pkg)
		if flags != imageBuildFlags {
			t.Errorf("the Dockerfile builds %s with %q; the tests build the image's binaries with %q", binary, flags, imageBuildFlags)
		}
		if pkg != "./cmd/"+binary {
			t.Errorf("the Dockerfile builds /%s from %s", binary, pkg)
		}
		if !strings.Contains(dockerfile, "COPY --from=builder /out/"+binary+" /"+binary+"\n") {
			t.Errorf("the Dockerfile builds %s but does not copy it to /%s", binary, binary)
		}
	}
	if !slices.Equal(binaries, []string{"manager", "authserver"}) {
		t.Fatalf("the Dockerfile builds %v with CGO_ENABLED=0, want manager and authserver", binaries)
	}
	for _, want := range []string{"\nUSER 65532:65532\n", "\nFROM gcr.io/distroless/static", "\nENTRYPOINT [\"/manager\"]\n"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %q", strings.TrimSpace(want))
		}
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Name}} {{.Dir}} {{join .GoFiles \",\"}} {{join .EmbedFiles \",\"}}{{end}}{{end}}"}, pkgs...)
	res, err := tools.run(t.Context(), nil, goTool, args...)
	if err != nil {
		t.Fatal(err)
	}
	patterns := dockerignorePatterns(t)
	mains := 0
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, dir := fields[0], fields[1]
		rel, err := filepath.Rel(tools.root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if name == "main" {
			mains++
		}
		for _, list := range fields[2:] {
			for _, file := range strings.Split(list, ",") {
				if path := filepath.Join(rel, file); dockerignored(patterns, path) {
					t.Errorf("%s is compiled into the image but .dockerignore leaves it out of the build context", path)
				}
			}
		}
	}
	if mains != len(pkgs) {
		t.Errorf("%d of %v are main packages", mains, pkgs)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore leaves %s out of the build context", f)
		}
	}
}

// imageBuildFlags are the `go build` flags of the Dockerfile, which the tests build with too.
const imageBuildFlags = `-trimpath -ldflags="-s -w"`

// buildTimeout bounds one `go build`, which compiles client-go on a cold cache.
const buildTimeout = 10 * time.Minute

// imageBuilds holds the binaries of the image, each built once per test run.
var imageBuilds = struct {
	sync.Mutex
	paths map[string]string
}{paths: map[string]string{}}

// imageBinary builds ./cmd/<name> as the Dockerfile builds /<name> (static, CGO_ENABLED=0,
// trimmed paths, no symbols) into the run's work folder, once, and returns its path.
func imageBinary(t *testing.T, name string) string {
	t.Helper()
	imageBuilds.Lock()
	defer imageBuilds.Unlock()
	if path, ok := imageBuilds.paths[name]; ok {
		return path
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out := filepath.Join(tools.workDir, name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/"+name)
	cmd.Dir = tools.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build %s -o %s ./cmd/%s: %v\n%s", imageBuildFlags, out, name, err, msg)
	}
	imageBuilds.paths[name] = out
	return out
}

// The minimal base image has no C library: the binaries must need none.
func TestImageBinaries_AreStatic(t *testing.T) {
	for _, name := range []string{"manager", "authserver"} {
		f, err := elf.Open(imageBinary(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("/%s is dynamically linked (program header %v): the distroless static image cannot run it", name, p.Type)
			}
		}
		if syms, err := f.Symbols(); err == nil && len(syms) > 0 {
			t.Errorf("/%s keeps %d symbols although the Dockerfile strips them", name, len(syms))
		}
		f.Close()
	}
}
