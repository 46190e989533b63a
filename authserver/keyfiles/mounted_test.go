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
	if stamps != 1 || links != 9 {
		t.Errorf("%d timestamped folders and %d links, want 1 and 9 (manifest, 2 public, 2 private, 2 of each for the refresh keys)", stamps, links)
	}
}

// TestReadDir_NeverSeesAHalfSwappedMount reads the directory while rotations that drop
// and add keys are swapped in under it, as the kubelet does: every read must succeed
// with one whole set, never fail on a per-key link that vanished mid-read.
func TestReadDir_NeverSeesAHalfSwappedMount(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMounted(dir, mustNewSet(t)); err != nil {
		t.Fatal(err)
	}
	const rotations = 200
	sets := make([]Set, rotations)
	for i := range sets {
		s, err := NewSet(t0.Add(time.Duration(i) * time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sets[i] = s
	}
	done := make(chan error, 1)
	go func() {
		for _, s := range sets {
			if err := WriteMounted(dir, s); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads, failures := 0, 0
	var firstFailure error
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if failures > 0 {
				t.Fatalf("%d of %d reads during %d rotations failed; first: %v", failures, reads, rotations, firstFailure)
			}
			t.Logf("%d reads during %d rotations, all whole sets", reads, rotations)
			return
		default:
		}
		reads++
		if _, err := ReadDir(dir); err != nil {
			failures++
			if firstFailure == nil {
				firstFailure = err
			}
		}
	}
}
