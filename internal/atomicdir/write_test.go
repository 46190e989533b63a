package atomicdir

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readThroughLink(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return string(data)
}

func TestWrite_LaysOutLikeTheKubelet(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 24, 6, 7, 8, 0, time.UTC)
	changed, err := Write(dir, map[string]File{
		"password":   {Data: []byte("s3cret"), Mode: 0o600},
		"redis.conf": {Data: []byte("requirepass s3cret\n"), Mode: 0o644},
	}, now)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	target, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatalf("..data is not a symlink: %v", err)
	}
	if !regexp.MustCompile(`^\.\.2026_11_24_06_07_08\.[0-9]+$`).MatchString(target) {
		t.Errorf("..data points at %q, want a ..YYYY_MM_DD_hh_mm_ss.<digits> folder", target)
	}
	for _, name := range []string{"password", "redis.conf"} {
		link, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || link != filepath.Join("..data", name) {
			t.Errorf("%s -> %q (%v), want ..data/%s", name, link, err, name)
		}
	}
	if got := readThroughLink(t, dir, "password"); got != "s3cret" {
		t.Errorf("password = %q", got)
	}
	info, err := os.Stat(filepath.Join(dir, "password"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("password mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
}

func TestWrite_UnchangedContentWritesNothing(t *testing.T) {
	dir := t.TempDir()
	files := map[string]File{"a": {Data: []byte("1"), Mode: 0o644}}
	if _, err := Write(dir, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Readlink(filepath.Join(dir, "..data"))
	changed, err := Write(dir, files, time.Now())
	if err != nil || changed {
		t.Fatalf("second write of the same content: changed=%v err=%v", changed, err)
	}
	after, _ := os.Readlink(filepath.Join(dir, "..data"))
	if before != after {
		t.Errorf("..data moved from %s to %s without a change", before, after)
	}
}

func TestWrite_UpdateSwapsDataAndDropsOldKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, map[string]File{
		"keep": {Data: []byte("old"), Mode: 0o644},
		"gone": {Data: []byte("x"), Mode: 0o644},
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	oldTarget, _ := os.Readlink(filepath.Join(dir, "..data"))
	changed, err := Write(dir, map[string]File{
		"keep": {Data: []byte("new"), Mode: 0o644},
		"add":  {Data: []byte("y"), Mode: 0o644},
	}, time.Now())
	if err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
	if got := readThroughLink(t, dir, "keep"); got != "new" {
		t.Errorf("keep = %q, want new", got)
	}
	if got := readThroughLink(t, dir, "add"); got != "y" {
		t.Errorf("add = %q, want y", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "gone")); !os.IsNotExist(err) {
		t.Errorf("link of a removed key is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, oldTarget)); !os.IsNotExist(err) {
		t.Errorf("old timestamped folder %s is still there", oldTarget)
	}
	entries, _ := os.ReadDir(dir)
	var dotted []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			dotted = append(dotted, e.Name())
		}
	}
	if len(dotted) != 2 {
		t.Errorf("want exactly ..data and one timestamped folder, got %v", dotted)
	}
}

func TestWrite_NestedItemPathLinksTopLevelOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, map[string]File{"conf/redis.conf": {Data: []byte("x"), Mode: 0o644}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if link, err := os.Readlink(filepath.Join(dir, "conf")); err != nil || link != "..data/conf" {
		t.Errorf("conf -> %q (%v)", link, err)
	}
	if got := readThroughLink(t, dir, "conf/redis.conf"); got != "x" {
		t.Errorf("conf/redis.conf = %q", got)
	}
}

func TestWrite_RejectsEscapingPaths(t *testing.T) {
	for _, name := range []string{"/etc/passwd", "../x", "a/../../x", "..data", ""} {
		dir := t.TempDir()
		if _, err := Write(dir, map[string]File{name: {Data: []byte("x"), Mode: 0o644}}, time.Now()); err == nil {
			t.Errorf("path %q was accepted", name)
		}
	}
}
