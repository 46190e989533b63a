package keyfiles

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// setWithRetired is an active and a next key created at t0, plus two retired keys: one
// whose access window closes at t0+1h and one whose closed at t0 (kept for refresh only).
func setWithRetired(t *testing.T) (s keydomain.Set, open, refreshOnly keydomain.Key) {
	t.Helper()
	s = mustNewSet(t)
	for i, expires := range []time.Time{t0.Add(time.Hour), t0} {
		k, err := GenerateKey(keydomain.StateRetired, t0.Add(-48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		retired, refresh := expires.Add(-time.Hour), expires.Add(720*time.Hour)
		k.RetiredAt, k.ExpiresAt, k.RefreshExpiresAt, k.Private = &retired, &expires, &refresh, nil
		s.Keys = append([]keydomain.Key{k}, s.Keys...)
		if i == 0 {
			open = k
		} else {
			refreshOnly = k
		}
	}
	return s, open, refreshOnly
}

func TestPublicProjection_HoldsOnlyPublicFilesOfKeysInTheirAccessWindow(t *testing.T) {
	s, open, refreshOnly := setWithRetired(t)
	files, err := PublicProjection(s, t0)
	if err != nil {
		t.Fatal(err)
	}
	active, _ := s.Active()
	next, _ := s.Next()
	want := map[string]bool{ManifestFile: true, PublicKeyFile(open.ID): true, PublicKeyFile(active.ID): true, PublicKeyFile(next.ID): true}
	if len(files) != len(want) {
		t.Errorf("files = %v, want %v", keys(files), want)
	}
	for name, data := range files {
		if !want[name] {
			t.Errorf("unexpected file %s", name)
		}
		if strings.HasSuffix(name, ".key.pem") || strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("%s holds private material", name)
		}
	}
	var m Manifest
	if err := json.Unmarshal(files[ManifestFile], &m); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range m.Keys {
		kids = append(kids, k.ID+"/"+string(k.State))
	}
	if got, wantKids := strings.Join(kids, " "), open.ID+"/retired "+active.ID+"/active "+next.ID+"/next"; got != wantKids {
		t.Errorf("manifest keys = %s, want %s", got, wantKids)
	}
	if m.Keys[0].RefreshExpiresAt == nil || !m.Keys[0].RefreshExpiresAt.Equal(*open.RefreshExpiresAt) {
		t.Errorf("manifest lost refreshExpiresAt: %+v", m.Keys[0])
	}
	// The projection's public files are the Secret's, byte for byte.
	secret, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(files[PublicKeyFile(active.ID)]) != string(secret[PublicKeyFile(active.ID)]) {
		t.Error("the projection's public key differs from the Secret's")
	}
	if _, ok := files[PublicKeyFile(refreshOnly.ID)]; ok {
		t.Error("a key past its access window is projected")
	}
}

func TestPublicProjection_RefusesAnInvalidSet(t *testing.T) {
	s := mustNewSet(t)
	s.Keys[1].State = keydomain.StateActive
	if _, err := PublicProjection(s, t0); err == nil || !strings.Contains(err.Error(), "exactly one active key") {
		t.Fatalf("err = %v, want the two active keys named", err)
	}
}

func TestEncodeDecode_KeepsRefreshExpiresAt(t *testing.T) {
	s, _, refreshOnly := setWithRetired(t)
	files, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(files)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := got.Lookup(refreshOnly.ID)
	if !ok || k.RefreshExpiresAt == nil || !k.RefreshExpiresAt.Equal(*refreshOnly.RefreshExpiresAt) {
		t.Fatalf("refreshExpiresAt after a round trip = %+v", k.KeyMeta)
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
