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
	// Promotable counts, for each primary a Sentinel named, the most replicas of it that one
	// of those Sentinels could promote.
	Promotable map[string]int
}

// Primary is the host:port of the primary a starting pod should follow, one of members
// (every Redis pod, in ordinal order; members[0] is pod 0):
//  1. the one most Sentinels name (the topology after any failover; ties go to the first
//     in name order, so every pod breaks them alike);
//  2. without an answering Sentinel (all of them restarting), a running Redis that is a
//     master, so a restart of every Sentinel does not demote the live primary;
//  3. otherwise pod 0: the first start, or a restart of everything.
//
// A Sentinel's answer that is not a member is ignored: whoever could talk to a Sentinel
// (SENTINEL SET, REMOVE and MONITOR, or a Sentinel of their own) could otherwise make every
// starting pod replicate, and serve the auth servers from, a host of their choosing.
func Primary(o Observation, members []string) string {
	counts := map[string]int{}
	for _, a := range o.SentinelAnswers {
		if slices.Contains(members, a) {
			counts[a]++
		}
	}
	if len(counts) > 0 {
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
	for _, m := range o.Masters {
		if slices.Contains(members, m) {
			return m
		}
	}
	return members[0]
}

// Heard reports whether o names a primary among members: a Sentinel's answer or a running
// Redis that is a master. When it does not, every pod restarted (or none ever ran) and
// Primary's pod 0 is only a default: Election decides on the pods' records instead.
func Heard(o Observation, members []string) bool {
	for _, a := range append(slices.Clone(o.SentinelAnswers), o.Masters...) {
		if slices.Contains(members, a) {
			return true
		}
	}
	return false
}

// AwaitFailover reports whether a Redis pod that starts while the Sentinels still name it the
// primary must wait for them to promote one of its replicas, rather than start as the
// primary. It must when enough Sentinels answer to fail over (quorum) and they know a replica
// they could promote: they will, since the pod was down, and a primary back in the meantime
// would take writes that the failover then drops (it is made a replica of the new one and
// discards them), among them logouts whose WAIT a replica the Sentinels did not promote had
// acknowledged. Without a promotable replica or a quorum, no failover can come, and the pod
// starts as the primary.
func AwaitFailover(o Observation, members []string, self string, quorum int) bool {
	return Primary(o, members) == self && len(o.SentinelAnswers) >= quorum && o.Promotable[self] > 0
}
