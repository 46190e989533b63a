package blacklist_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestNextGeneration decides, from the generation a server holds and the marker it
// reads, what it adopts, whether it writes it and whether data was lost.
func TestNextGeneration(t *testing.T) {
	now := time.Now()
	g1 := blacklist.GenerationAt(now.Add(-time.Hour), 0, "")
	older := blacklist.GenerationAt(now.Add(-2*time.Hour), 0, "")
	successor := blacklist.GenerationAt(now.Add(-time.Minute), now.Add(-time.Minute).Unix()+1, g1.ID)
	freshFirst := blacklist.GenerationAt(now.Add(-time.Minute), 0, "")
	previousRelease := g1
	previousRelease.KeyLayout = 0
	legacyUntil := now.Add(blacklist.LegacyLayoutWindow).UnixMilli()
	cases := []struct {
		name            string
		known           blacklist.Generation
		marker          *blacklist.Generation
		adopt           string // "new" for a new generation
		write, lost     bool
		cutoffFromNow   bool
		previousIsKnown bool
		// legacyUntil is the LegacyUntil the step sets; the marker's own when -1.
		legacyUntil int64
	}{
		{"first server on an empty store writes the first generation, reading the first release's entries", blacklist.Generation{}, nil, "new", true, false, false, false, legacyUntil},
		{"a starting server adopts the marker", blacklist.Generation{}, &successor, successor.ID, false, false, false, false, -1},
		{"the same generation is kept", g1, &g1, g1.ID, false, false, false, false, -1},
		{"a marker of the previous release is marked, and the first release's entries read", blacklist.Generation{}, &previousRelease, g1.ID, true, false, false, false, legacyUntil},
		{"a marker gone is a loss: new generation, cutoff now", g1, nil, "new", true, true, true, true, 0},
		{"another server's detection is adopted", g1, &successor, successor.ID, false, true, false, false, -1},
		{"a restored older marker is a loss", g1, &older, "new", true, true, true, true, 0},
		{"a newer generation without a cutoff (written after a loss by a fresh server) is a loss", g1, &freshFirst, "new", true, true, true, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, write, lost := blacklist.NextGeneration(tc.known, tc.marker, now)
			if write != tc.write || lost != tc.lost {
				t.Fatalf("write, lost = %v, %v; want %v, %v", write, lost, tc.write, tc.lost)
			}
			if tc.adopt != "new" && got.ID != tc.adopt {
				t.Fatalf("adopted %s, want %s", got.ID, tc.adopt)
			}
			if tc.adopt == "new" && (got.ID == tc.known.ID || tc.marker != nil && got.ID == tc.marker.ID) {
				t.Fatalf("adopted %s, want a new generation", got.ID)
			}
			if tc.cutoffFromNow && got.NotBefore != now.Unix()+1 {
				t.Fatalf("cutoff %d, want %d (tokens issued up to now refused)", got.NotBefore, now.Unix()+1)
			}
			if tc.previousIsKnown && got.Previous != tc.known.ID {
				t.Fatalf("previous %q, want %q", got.Previous, tc.known.ID)
			}
			if got.KeyLayout != blacklist.KeyLayout {
				t.Fatalf("key layout %d, want %d", got.KeyLayout, blacklist.KeyLayout)
			}
			want := tc.legacyUntil
			if want == -1 {
				want = tc.marker.LegacyUntil
			}
			if got.LegacyUntil != want {
				t.Fatalf("legacy until %d, want %d", got.LegacyUntil, want)
			}
		})
	}
}

// TestGeneration_FlushallIsDetectedAndOldTokensRefused: after FLUSHALL the logged-out
// token's entry is gone and it would verify again; the next generation check finds
// the marker gone, and from then on every token issued before the detection is
// refused (in memory: no Redis entry needed), on the server that detected it, on
// another running server, on a server started afterwards, while a token issued after
// it is accepted.
func TestGeneration_FlushallIsDetectedAndOldTokensRefused(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	regA := prometheus.NewRegistry()
	a, b := generationStore(t, srv, regA), generationStore(t, srv, nil)
	ctx := context.Background()
	first := checkGeneration(t, a, false)
	if got := checkGeneration(t, b, false); got.Generation.ID != first.Generation.ID {
		t.Fatalf("second server holds %s, want the first's %s", got.Generation.ID, first.Generation.ID)
	}
	loggedOut := blacklist.Subject{UserID: "u-1", TokenID: "sig:out", IssuedAt: time.Now().Add(-time.Minute)}
	live := blacklist.Subject{UserID: "u-2", TokenID: "sig:live", IssuedAt: time.Now().Add(-time.Minute)}
	if err := a.Revoke(ctx, loggedOut, blacklist.Until(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := redistest.Command(srv.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	if listed, _ := b.Check(ctx, loggedOut); listed {
		t.Fatal("FLUSHALL left the entry: the test shows nothing")
	}

	lost := checkGeneration(t, a, true)
	if lost.Previous != first.Generation.ID || lost.Generation.Previous != first.Generation.ID {
		t.Fatalf("loss recorded %+v, want the lost generation %s", lost, first.Generation.ID)
	}
	if n := counterValue(t, regA, "authserver_blacklist_store_data_lost_total"); n != 1 {
		t.Fatalf("authserver_blacklist_store_data_lost_total = %v, want 1", n)
	}
	adopted := checkGeneration(t, b, true)
	restarted := generationStore(t, srv, nil)
	if got := checkGeneration(t, restarted, false); got.Generation.ID != lost.Generation.ID || adopted.Generation.ID != lost.Generation.ID {
		t.Fatalf("servers hold %s and %s, want the detecting server's %s", adopted.Generation.ID, got.Generation.ID, lost.Generation.ID)
	}
	after := blacklist.Subject{UserID: "u-3", TokenID: "sig:new", IssuedAt: time.Unix(lost.Generation.NotBefore, 0)}
	for name, s := range map[string]*blacklist.Store{"detecting": a, "other": b, "restarted": restarted} {
		for _, sub := range []blacklist.Subject{loggedOut, live} {
			if listed, err := s.Check(ctx, sub); err != nil || !listed {
				t.Errorf("%s server: token issued before the detection: listed %v, %v; want refused", name, listed, err)
			}
		}
		if listed, err := s.Check(ctx, after); err != nil || listed {
			t.Errorf("%s server: token issued after the detection: listed %v, %v; want accepted", name, listed, err)
		}
	}
	if err := b.Revoke(ctx, live, blacklist.Until(time.Now().Add(time.Hour))); err == nil || !strings.Contains(err.Error(), "blacklisted") {
		t.Errorf("logout of a token issued before the detection: %v, want already blacklisted", err)
	}
}

// TestGeneration_LossWhileEveryServerWasDown: the issuer holds the generation its
// ConfigMap recorded. A verifier started first on the emptied store writes a first
// generation without a cutoff; the issuer finds another generation than its own and
// starts one with a cutoff, which the verifier then adopts: both refuse old tokens.
func TestGeneration_LossWhileEveryServerWasDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	recorded := blacklist.GenerationAt(time.Now().Add(-time.Hour), 0, "")
	verifier, issuer := generationStore(t, srv, nil), generationStore(t, srv, nil)
	checkGeneration(t, verifier, false)
	issuer.Hold(recorded)
	lost := checkGeneration(t, issuer, true)
	if lost.Previous != recorded.ID || lost.Generation.NotBefore == 0 {
		t.Fatalf("issuer found %+v, want the loss of %s with a cutoff", lost, recorded.ID)
	}
	if got := checkGeneration(t, verifier, true); got.Generation.ID != lost.Generation.ID {
		t.Fatalf("verifier holds %s, want the issuer's %s", got.Generation.ID, lost.Generation.ID)
	}
	if got := checkGeneration(t, issuer, false); got.Generation.ID != lost.Generation.ID {
		t.Fatalf("issuer moved on to %s: the servers do not agree", got.Generation.ID)
	}
	old := blacklist.Subject{UserID: "u-1", TokenID: "sig:old", IssuedAt: time.Now().Add(-time.Minute)}
	if listed, err := verifier.Check(context.Background(), old); err != nil || !listed {
		t.Fatalf("verifier: old token listed %v, %v; want refused", listed, err)
	}
}

func generationStore(t *testing.T, srv *redistest.Server, reg prometheus.Registerer) *blacklist.Store {
	t.Helper()
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "gen:", Registerer: reg})
	t.Cleanup(s.Close)
	return s
}

func checkGeneration(t *testing.T, s *blacklist.Store, wantLost bool) blacklist.GenerationEvent {
	t.Helper()
	ev, err := s.CheckGeneration(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Lost != wantLost {
		t.Fatalf("generation check: lost = %v, want %v (%+v)", ev.Lost, wantLost, ev)
	}
	return ev
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestGeneration_ALossOnAnyShardOfAClusterIsDetected runs a real three-master Redis
// Cluster and empties one master at a time (FLUSHALL on that node alone, as its restart
// without persistence or a failover to an empty replica would): each time, whichever
// master it was, the next check finds the loss, and tokens issued before it are refused;
// a check without a loss in between finds none.
func TestGeneration_ALossOnAnyShardOfAClusterIsDetected(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{cluster.Nodes[0].Addr}, Mode: blacklist.ModeCluster, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "gen:"})
	t.Cleanup(s.Close)
	ctx := context.Background()
	held := checkGeneration(t, s, false).Generation
	checkGeneration(t, s, false)
	for i, node := range cluster.Nodes {
		t.Run(fmt.Sprintf("master %d", i), func(t *testing.T) {
			if _, err := redistest.Command(node.Addr, "FLUSHALL"); err != nil {
				t.Fatal(err)
			}
			lost := checkGeneration(t, s, true)
			if lost.Previous != held.ID || lost.Generation.NotBefore == 0 {
				t.Fatalf("loss found %+v, want the loss of %s with a cutoff", lost, held.ID)
			}
			before := blacklist.Subject{UserID: "u-1", TokenID: "sig:before", IssuedAt: time.Unix(lost.Generation.NotBefore-2, 0)}
			if listed, err := s.Check(ctx, before); err != nil || !listed {
				t.Errorf("token issued before the loss: listed %v, %v; want refused", listed, err)
			}
			held = checkGeneration(t, s, false).Generation
			if held.ID != lost.Generation.ID {
				t.Fatalf("holds %s after the loss, want %s", held.ID, lost.Generation.ID)
			}
		})
	}
}
