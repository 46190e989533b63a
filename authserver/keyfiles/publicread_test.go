package keyfiles

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadPublicDir_NeverOpensPrivateKeys reads a full Secret layout whose private key
// files cannot be opened (dangling links): a verifier's read succeeds with public
// material only, the issuer's read (ReadDir) fails on them.
func TestReadPublicDir_NeverOpensPrivateKeys(t *testing.T) {
	set, err := NewSet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteDir(dir, set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		p := filepath.Join(dir, PrivateKeyFile(k.ID))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "gone"), p); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := ReadPublicDir(dir)
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
	if _, err := ReadDir(dir); err == nil {
		t.Fatal("ReadDir with unreadable private keys succeeded")
	}
}
