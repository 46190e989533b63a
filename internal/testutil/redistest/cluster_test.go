package redistest

import (
	"strings"
	"testing"
)

func TestStartCluster_EveryNodeKnowsTheOthersAndTheSlotsAreCovered(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(c.Nodes))
	}
	for _, n := range c.Nodes {
		info, err := command(n.Addr, "CLUSTER", "INFO")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:3\r", "cluster_slots_assigned:16384\r"} {
			if !strings.Contains(info, want) {
				t.Errorf("%s: CLUSTER INFO lacks %q:\n%s", n.Addr, strings.TrimSpace(want), info)
			}
		}
	}
}
