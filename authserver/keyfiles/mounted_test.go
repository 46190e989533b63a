package keyfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteMounted_SwapsLikeTheKubelet(t *testing.T) {
	dir := t.TempDir()
	first := mustNewSet(t)
	if err := WriteMounted(dir, first); err != nil {
		t.Fatal(err)
	}
	second, err := NewSet(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMounted(dir, second); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := got.Active()
	want, _ := second.Active()
	if a.ID != want.ID {
		t.Fatalf("active = %s, want %s", a.ID, want.ID)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var stamps, links int
	for _, e := range entries {
		switch {
		case e.Name() == "..data":
		case strings.HasPrefix(e.Name(), ".."):
			stamps++
		case e.Type()&os.ModeSymlink != 0:
			links++
			target, _ := os.Readlink(filepath.Join(dir, e.Name()))
			if target != filepath.Join("..data", e.Name()) {
				t.Errorf("%s links to %s", e.Name(), target)
			}
		default:
			t.Errorf("unexpected entry %s", e.Name())
		}
	}
	if stamps != 1 || links != 5 {
		t.Errorf("%d timestamped folders and %d links, want 1 and 5 (manifest, 2 public, 2 private)", stamps, links)
	}
}
