package redistopology_test

import (
	"testing"

	"github.com/hiringo/auth-operator/internal/redistopology"
)

func TestPrimary_SentinelsThenRunningMastersThenPodZero(t *testing.T) {
	const seed, r1, r2, evil = "r-0.h:6379", "r-1.h:6379", "r-2.h:6379", "evil.example.com:6379"
	for _, tc := range []struct {
		name string
		o    redistopology.Observation
		want string
	}{
		{"first start: nobody answers", redistopology.Observation{}, seed},
		{"after a failover the Sentinels name pod 1", redistopology.Observation{SentinelAnswers: []string{r1, r1}, Masters: []string{seed}}, r1},
		{"the majority of Sentinels wins", redistopology.Observation{SentinelAnswers: []string{r2, r1, r2}}, r2},
		{"a tie goes to the first name", redistopology.Observation{SentinelAnswers: []string{r2, r1}}, r1},
		{"every Sentinel restarting: the live master", redistopology.Observation{Masters: []string{r2}}, r2},
		{"two masters without Sentinels: the first in ordinal order", redistopology.Observation{Masters: []string{r1, r2}}, r1},
		{"a Sentinel naming a host outside the members is ignored", redistopology.Observation{SentinelAnswers: []string{evil, evil, r1}}, r1},
		{"only foreign answers: the live master", redistopology.Observation{SentinelAnswers: []string{evil}, Masters: []string{r2}}, r2},
		{"only foreign answers, no master: pod 0", redistopology.Observation{SentinelAnswers: []string{evil, evil}}, seed},
		{"a member's name with another port is not a member", redistopology.Observation{SentinelAnswers: []string{"r-1.h:6380"}}, seed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redistopology.Primary(tc.o, []string{seed, r1, r2}); got != tc.want {
				t.Errorf("Primary = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestAwaitFailover_OnlyWhenTheSentinelsCanPromoteAReplica(t *testing.T) {
	const seed, r1, r2 = "r-0.h:6379", "r-1.h:6379", "r-2.h:6379"
	members := []string{seed, r1, r2}
	for _, tc := range []struct {
		name string
		o    redistopology.Observation
		self string
		want bool
	}{
		{"the named primary back while its replicas are up: wait",
			redistopology.Observation{SentinelAnswers: []string{seed, seed, seed}, Promotable: map[string]int{seed: 2}}, seed, true},
		{"a quorum of two is enough",
			redistopology.Observation{SentinelAnswers: []string{seed, seed}, Promotable: map[string]int{seed: 1}}, seed, true},
		{"a replica starting: no wait",
			redistopology.Observation{SentinelAnswers: []string{seed, seed}, Promotable: map[string]int{seed: 1}}, r1, false},
		{"after the failover the Sentinels name another: no wait",
			redistopology.Observation{SentinelAnswers: []string{r1, r1, r1}, Promotable: map[string]int{r1: 1}}, seed, false},
		{"no replica to promote (all down): start as the primary",
			redistopology.Observation{SentinelAnswers: []string{seed, seed, seed}, Promotable: map[string]int{seed: 0}}, seed, false},
		{"fewer Sentinels than the quorum cannot fail over: start",
			redistopology.Observation{SentinelAnswers: []string{seed}, Promotable: map[string]int{seed: 2}}, seed, false},
		{"no Sentinel answers (a first start): start",
			redistopology.Observation{}, seed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redistopology.AwaitFailover(tc.o, members, tc.self, 2); got != tc.want {
				t.Errorf("AwaitFailover = %v, want %v", got, tc.want)
			}
		})
	}
}
