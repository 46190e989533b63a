package devkeys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

func newSet(t *testing.T, now time.Time) keydomain.Set {
	t.Helper()
	s, err := keyfiles.NewSet(now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteMounted_SwapsLikeTheKubelet(t *testing.T) {
	dir := t.TempDir()
	first := newSet(t, t0)
	if err := WriteMounted(dir, first); err != nil {
		t.Fatal(err)
	}
	second, err := keyfiles.NewSet(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMounted(dir, second); err != nil {
		t.Fatal(err)
	}
	got, err := keyfiles.ReadDir(dir)
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
	if err := WriteMounted(dir, newSet(t, t0)); err != nil {
		t.Fatal(err)
	}
	const rotations = 200
	sets := make([]keydomain.Set, rotations)
	for i := range sets {
		s, err := keyfiles.NewSet(t0.Add(time.Duration(i) * time.Hour))
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
		if _, err := keyfiles.ReadDir(dir); err != nil {
			failures++
			if firstFailure == nil {
				firstFailure = err
			}
		}
	}
}

func TestReadDir_ReadsWhatWriteDirWrote(t *testing.T) {
	dir := t.TempDir()
	s := newSet(t, t0)
	if err := WriteDir(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := keyfiles.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(got.Keys))
	}
}

// TestReadPublicDir_NeverOpensPrivateKeys reads a full Secret layout whose private key
// files cannot be opened (dangling links): a verifier's read succeeds with public
// material only, the issuer's read (ReadDir) fails on them.
func TestReadPublicDir_NeverOpensPrivateKeys(t *testing.T) {
	set, err := keyfiles.NewSet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteDir(dir, set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		p := filepath.Join(dir, keyfiles.PrivateKeyFile(k.ID))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "gone"), p); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := keyfiles.ReadPublicDir(dir)
	if err != nil {
		t.Fatalf("ReadPublicDir: %v", err)
	}
	if len(pub.Keys) != len(set.Keys) {
		t.Fatalf("ReadPublicDir: %d keys, want %d", len(pub.Keys), len(set.Keys))
	}
	for _, k := range pub.Keys {
		if k.Private != nil || k.Public == nil {
			t.Fatalf("key %s: private %v, public %v; want public material only", k.ID, k.Private != nil, k.Public != nil)
		}
	}
	if _, err := keyfiles.ReadDir(dir); err == nil {
		t.Fatal("ReadDir with unreadable private keys succeeded")
	}
}
