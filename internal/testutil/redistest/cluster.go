package redistest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// Cluster is a Redis Cluster of primaries on loopback, the slots split evenly between
// them, all stopped when the test ends.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs masters Cluster nodes, joins them (CLUSTER MEET), gives each an
// even range of slots and returns once every node reports the cluster ok and knows
// every other node. It fails the test when that takes more than 20s.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	skipShort(t)
	if masters < 1 {
		t.Fatal("a cluster needs at least one master")
	}
	c := &Cluster{}
	for range masters {
		c.Nodes = append(c.Nodes, Start(t, Options{clusterNode: true}))
	}
	for i, n := range c.Nodes {
		if i > 0 {
			host, port := splitAddr(t, n.Addr)
			if _, err := command(c.Nodes[0].Addr, "CLUSTER", "MEET", host, port, strconv.Itoa(n.busPort)); err != nil {
				t.Fatalf("CLUSTER MEET %s: %v", n.Addr, err)
			}
		}
		from, to := i*16384/masters, (i+1)*16384/masters-1
		if _, err := command(n.Addr, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(from), strconv.Itoa(to)); err != nil {
			t.Fatalf("assigning slots %d-%d to %s: %v", from, to, n.Addr, err)
		}
	}
	poll.Until(t, 20*time.Second, fmt.Sprintf("cluster of %d masters ok", masters), func() error { return c.settled(masters) })
	return c
}

func (c *Cluster) settled(masters int) error {
	for _, n := range c.Nodes {
		info, err := command(n.Addr, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(masters)+"\r") ||
			!strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("node %s: %s", n.Addr, strings.Join(strings.Fields(info)[:6], " "))
		}
	}
	return nil
}

func splitAddr(t testing.TB, addr string) (host, port string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[:i], addr[i+1:]
}
