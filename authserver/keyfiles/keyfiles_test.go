package keyfiles

import (
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

func mustNewSet(t *testing.T) keydomain.Set {
	t.Helper()
	s, err := NewSet(t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEncodeDecode_RoundTripsEveryKey(t *testing.T) {
	s := mustNewSet(t)
	retired, err := GenerateKey(keydomain.StateRetired, t0.Add(-time.Hour))
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
	if _, ok := files[RefreshPrivateKeyFile(retired.ID)]; ok {
		t.Fatalf("retired key's refresh private part was written")
	}
	if len(files) != 1+3+2+3+2 {
		t.Fatalf("got %d files, want manifest + 3 public + 2 private, and as many of each for the refresh keys", len(files))
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
		if (k.Private == nil) != (want.State == keydomain.StateRetired) {
			t.Errorf("key %d (%s): private present = %v", i, k.State, k.Private != nil)
		}
		if k.Refresh == nil || k.Refresh.ID != want.Refresh.ID || !k.Refresh.Public.Equal(want.Refresh.Public) || k.Refresh.ID == k.ID {
			t.Errorf("key %d (%s): refresh key %+v, want %s, another kid than the key's", i, k.State, k.Refresh, want.Refresh.ID)
		} else if (k.Refresh.Private == nil) != (want.State == keydomain.StateRetired) {
			t.Errorf("key %d (%s): refresh private present = %v", i, k.State, k.Refresh.Private != nil)
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
		{"missing refresh private key", func(f map[string][]byte) { delete(f, RefreshPrivateKeyFile(active.ID)) }, "is active but " + RefreshPrivateKeyFile(active.ID) + " is missing"},
		{"refresh private key without its public key", func(f map[string][]byte) { delete(f, RefreshPublicKeyFile(next.ID)) }, "without " + RefreshPublicKeyFile(next.ID)},
		{"swapped refresh private keys", func(f map[string][]byte) {
			f[RefreshPrivateKeyFile(next.ID)], f[RefreshPrivateKeyFile(active.ID)] = f[RefreshPrivateKeyFile(active.ID)], f[RefreshPrivateKeyFile(next.ID)]
		}, "refresh private key does not match"},
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

// TestRefreshKeys_StayOutOfEverythingAVerifierOrConsumerReads: the refresh-token keys are
// in the Secret's files only: the public projection, the JWKS and a verifier's decoding
// of the full Secret hold none of them.
func TestRefreshKeys_StayOutOfEverythingAVerifierOrConsumerReads(t *testing.T) {
	s := mustNewSet(t)
	files, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	projection, err := PublicProjection(s, t0)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := JWKS(s)
	if err != nil {
		t.Fatal(err)
	}
	public, err := DecodePublic(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Keys {
		if _, ok := projection[RefreshPublicKeyFile(k.ID)]; ok {
			t.Errorf("the public projection holds %s", RefreshPublicKeyFile(k.ID))
		}
		for name, data := range projection {
			if strings.Contains(string(data), k.Refresh.ID) {
				t.Errorf("the public projection's %s names refresh kid %s", name, k.Refresh.ID)
			}
		}
		if strings.Contains(string(jwks), k.Refresh.ID) {
			t.Errorf("the JWKS names refresh kid %s", k.Refresh.ID)
		}
	}
	for _, k := range public.Keys {
		if k.Refresh != nil {
			t.Errorf("DecodePublic kept the refresh key of %s", k.ID)
		}
	}
}

// TestWithRefreshKeys_AddsThemToSigningKeysOfAnOlderSet: a set written before refresh keys
// existed gets one for its next and active keys, none for its retired keys, and keeps
// every key's identity.
func TestWithRefreshKeys_AddsThemToSigningKeysOfAnOlderSet(t *testing.T) {
	s := mustNewSet(t)
	retired, err := GenerateKey(keydomain.StateRetired, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.Keys = append(s.Keys, retired)
	for i := range s.Keys {
		s.Keys[i].Refresh = nil
	}
	got, added, err := WithRefreshKeys(s)
	if err != nil || !added {
		t.Fatalf("WithRefreshKeys = %v, %v; want added", added, err)
	}
	for i, k := range got.Keys {
		if k.ID != s.Keys[i].ID || (k.Refresh != nil) != (k.State != keydomain.StateRetired) {
			t.Errorf("key %s (%s): refresh key %v", k.ID, k.State, k.Refresh)
		}
	}
	if _, added, _ := WithRefreshKeys(got); added {
		t.Error("a second pass added refresh keys again")
	}
	files, err := Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(files); err != nil {
		t.Fatalf("the completed set does not decode: %v", err)
	}
}
