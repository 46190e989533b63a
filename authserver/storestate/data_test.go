package storestate_test

import (
	"maps"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/storestate"
)

// TestData derives the ConfigMap's data from the latest generation event and what it
// held, so that coalesced events lose nothing.
func TestData(t *testing.T) {
	at := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	nb := at.Unix() + 1
	later := at.Add(time.Hour)
	cases := []struct {
		name    string
		current map[string]string
		ev      blacklist.GenerationEvent
		want    map[string]string
	}{
		{"first generation", nil, blacklist.GenerationEvent{Generation: blacklist.Generation{ID: "g1"}},
			map[string]string{"generation": "g1", "lostAt": "", "previousGeneration": "", "notBefore": ""}},
		{"a loss", map[string]string{"generation": "g1"}, blacklist.GenerationEvent{Generation: blacklist.Generation{ID: "g2", NotBefore: nb, Previous: "g1"}, Lost: true, Previous: "g1"},
			map[string]string{"generation": "g2", "lostAt": "2026-12-02T01:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T01:00:01Z"}},
		{"a loss seen only in the generation (the event that found it was coalesced)", map[string]string{"generation": "g1"}, blacklist.GenerationEvent{Generation: blacklist.Generation{ID: "g2", NotBefore: nb, Previous: "g1"}},
			map[string]string{"generation": "g2", "lostAt": "2026-12-02T01:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T01:00:01Z"}},
		{"the same generation again keeps the recorded loss",
			map[string]string{"generation": "g2", "lostAt": "2026-12-02T01:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T01:00:01Z"},
			blacklist.GenerationEvent{Generation: blacklist.Generation{ID: "g2", NotBefore: nb, Previous: "g1"}},
			map[string]string{"generation": "g2", "lostAt": "2026-12-02T01:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T01:00:01Z"}},
		{"a second loss, its event coalesced",
			map[string]string{"generation": "g2", "lostAt": "2026-12-02T01:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T01:00:01Z"},
			blacklist.GenerationEvent{Generation: blacklist.Generation{ID: "g3", NotBefore: later.Unix() + 1, Previous: "g2"}},
			map[string]string{"generation": "g3", "lostAt": "2026-12-02T02:00:00Z", "previousGeneration": "g2", "notBefore": "2026-12-02T02:00:01Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := storestate.Data(tc.current, tc.ev); !maps.Equal(got, tc.want) {
				t.Fatalf("Data = %v\nwant %v", got, tc.want)
			}
		})
	}
}
