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
