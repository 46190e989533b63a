package redistopology

import (
	"cmp"
	"slices"
)

// Observation is what a starting pod learned from the others.
type Observation struct {
	// SentinelAnswers are the primaries the reachable Sentinels name (host:port), one per
	// Sentinel that answered.
	SentinelAnswers []string
	// Masters are the reachable Redis pods (other than the starting one) that report the
	// master role, in ordinal order.
	Masters []string
}

// Primary is the host:port of the primary a starting pod should follow:
//  1. the one most Sentinels name (the topology after any failover; ties go to the first
//     in name order, so every pod breaks them alike);
//  2. without an answering Sentinel (all of them restarting), a running Redis that is a
//     master, so a restart of every Sentinel does not demote the live primary;
//  3. otherwise seed, pod 0: the first start, or a restart of everything.
func Primary(o Observation, seed string) string {
	if len(o.SentinelAnswers) > 0 {
		counts := map[string]int{}
		for _, a := range o.SentinelAnswers {
			counts[a]++
		}
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int {
			if c := cmp.Compare(counts[b], counts[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		return names[0]
	}
	if len(o.Masters) > 0 {
		return o.Masters[0]
	}
	return seed
}
