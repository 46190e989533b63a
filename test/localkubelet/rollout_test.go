package localkubelet

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func zeroUnavailable() appsv1.DeploymentStrategy {
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	return appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one},
	}
}

func TestPlanDeployment(t *testing.T) {
	recreate := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	for _, tc := range []struct {
		name     string
		replicas int32
		strategy appsv1.DeploymentStrategy
		pods     []podSummary
		want     rolloutPlan
	}{
		{name: "scale from zero", replicas: 2, strategy: zeroUnavailable(), want: rolloutPlan{Create: 2}},
		{name: "steady", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "h", Ready: true}, {Name: "b", Hash: "h", Ready: true}}},
		{name: "scale down drops not-ready first", replicas: 1, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "h", Ready: true}, {Name: "b", Hash: "h"}},
			want: rolloutPlan{Delete: []string{"b"}}},
		{name: "rollout surges one and keeps old pods while new are not ready", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "old", Ready: true}, {Name: "b", Hash: "old", Ready: true}},
			want: rolloutPlan{Create: 1}},
		{name: "rollout waits for the surged pod", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "old", Ready: true}, {Name: "b", Hash: "old", Ready: true}, {Name: "c", Hash: "h"}}},
		{name: "rollout replaces one old pod per ready new pod", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "old", Ready: true}, {Name: "b", Hash: "old", Ready: true}, {Name: "c", Hash: "h", Ready: true}},
			want: rolloutPlan{Delete: []string{"a"}}},
		{name: "terminating pods do not count", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "old", Terminating: true}, {Name: "b", Hash: "old", Ready: true}, {Name: "c", Hash: "h", Ready: true}},
			want: rolloutPlan{Create: 1}},
		{name: "not-ready old pods go at once", replicas: 2, strategy: zeroUnavailable(),
			pods: []podSummary{{Name: "a", Hash: "old"}, {Name: "b", Hash: "old"}},
			want: rolloutPlan{Create: 1, Delete: []string{"a", "b"}}},
		{name: "recreate stops old pods first", replicas: 2, strategy: recreate,
			pods: []podSummary{{Name: "a", Hash: "old", Ready: true}},
			want: rolloutPlan{Delete: []string{"a"}}},
		{name: "recreate waits for old pods to stop", replicas: 2, strategy: recreate,
			pods: []podSummary{{Name: "a", Hash: "old", Terminating: true}}},
		{name: "recreate starts new pods once old are gone", replicas: 2, strategy: recreate,
			want: rolloutPlan{Create: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planDeployment(tc.replicas, tc.strategy, "h", tc.pods)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRollingParams_DefaultsAndPercentages(t *testing.T) {
	if s, u := rollingParams(4, appsv1.DeploymentStrategy{}); s != 1 || u != 1 {
		t.Errorf("defaults for 4 replicas: surge %d unavailable %d, want 1 1", s, u)
	}
	if s, u := rollingParams(2, appsv1.DeploymentStrategy{}); s != 1 || u != 0 {
		t.Errorf("defaults for 2 replicas: surge %d unavailable %d, want 1 0", s, u)
	}
	zero := intstr.FromInt32(0)
	both := appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}}
	if s, _ := rollingParams(2, both); s != 1 {
		t.Errorf("both zero: surge %d, want 1", s)
	}
}

func TestPlanStatefulSet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		parallel bool
		pods     []podSummary
		want     rolloutPlan
	}{
		{name: "ordered start begins at 0", replicas: 2, want: rolloutPlan{CreateOrdinals: []int{0}}},
		{name: "ordered start waits for 0 to be ready", replicas: 2,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "h"}}},
		{name: "ordered start goes on once 0 is ready", replicas: 2,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "h", Ready: true}},
			want: rolloutPlan{CreateOrdinals: []int{1}}},
		{name: "parallel starts all", replicas: 3, parallel: true, want: rolloutPlan{CreateOrdinals: []int{0, 1, 2}}},
		{name: "a restarted ordinal comes back", replicas: 1,
			want: rolloutPlan{CreateOrdinals: []int{0}}},
		{name: "terminating ordinal is not recreated yet", replicas: 1,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "old", Terminating: true}}},
		{name: "scale down stops the highest first", replicas: 1,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "h", Ready: true}, {Name: "r-1", Ordinal: 1, Hash: "h", Ready: true}, {Name: "r-2", Ordinal: 2, Hash: "h", Ready: true}},
			want: rolloutPlan{Delete: []string{"r-2"}}},
		{name: "update replaces the highest old pod when all are ready", replicas: 2,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "old", Ready: true}, {Name: "r-1", Ordinal: 1, Hash: "old", Ready: true}},
			want: rolloutPlan{Delete: []string{"r-1"}}},
		{name: "update waits while a pod is not ready", replicas: 2,
			pods: []podSummary{{Name: "r-0", Ordinal: 0, Hash: "old", Ready: true}, {Name: "r-1", Ordinal: 1, Hash: "h"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planStatefulSet(tc.replicas, tc.parallel, true, "h", tc.pods)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}
