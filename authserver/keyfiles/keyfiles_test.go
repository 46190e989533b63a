package keyfiles

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

func mustNewSet(t *testing.T) Set {
	t.Helper()
	s, err := NewSet(t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEncodeDecode_RoundTripsEveryKey(t *testing.T) {
	s := mustNewSet(t)
	retired, err := GenerateKey(StateRetired, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.Keys = append(s.Keys, retired)

	files, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[PrivateKeyFile(retired.ID)]; ok {
		t.Fatalf("retired key's private part was written")
	}
	if len(files) != 1+3+2 {
		t.Fatalf("got %d files, want manifest + 3 public + 2 private", len(files))
	}
	got, err := Decode(files)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range got.Keys {
		want := s.Keys[i]
		if k.ID != want.ID || k.State != want.State || !k.Public.Equal(want.Public) {
			t.Errorf("key %d: got %s/%s, want %s/%s", i, k.ID, k.State, want.ID, want.State)
		}
		if (k.Private == nil) != (want.State == StateRetired) {
			t.Errorf("key %d (%s): private present = %v", i, k.State, k.Private != nil)
		}
	}
	if a, _ := got.Active(); a.ID != s.Keys[0].ID {
		t.Errorf("active = %s, want %s", a.ID, s.Keys[0].ID)
	}
}

func TestDecode_RejectsBrokenSets(t *testing.T) {
	s := mustNewSet(t)
	active, _ := s.Active()
	next, _ := s.Next()
	cases := []struct {
		name   string
		mutate func(map[string][]byte)
		want   string
	}{
		{"no manifest", func(f map[string][]byte) { delete(f, ManifestFile) }, "no keyset.json"},
		{"manifest not json", func(f map[string][]byte) { f[ManifestFile] = []byte("{") }, "parsing keyset.json"},
		{"missing public key", func(f map[string][]byte) { delete(f, PublicKeyFile(next.ID)) }, "missing " + PublicKeyFile(next.ID)},
		{"missing private key", func(f map[string][]byte) { delete(f, PrivateKeyFile(active.ID)) }, "is active but"},
		{"swapped public keys", func(f map[string][]byte) {
			f[PublicKeyFile(next.ID)], f[PublicKeyFile(active.ID)] = f[PublicKeyFile(active.ID)], f[PublicKeyFile(next.ID)]
		}, "thumbprint"},
		{"garbage pem", func(f map[string][]byte) { f[PrivateKeyFile(next.ID)] = []byte("nope") }, "not a PEM"},
		{"two active", func(f map[string][]byte) {
			f[ManifestFile] = []byte(strings.Replace(string(f[ManifestFile]), `"next"`, `"active"`, 1))
		}, "exactly one active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(files)
			_, err = Decode(files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReadDir_ReadsWhatWriteDirWrote(t *testing.T) {
	dir := t.TempDir()
	s := mustNewSet(t)
	if err := WriteDir(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(got.Keys))
	}
}
