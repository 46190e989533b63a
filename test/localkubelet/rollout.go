package localkubelet

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podSummary is what the rollout and status decisions need to know about one local pod.
type podSummary struct {
	Name        string
	Ordinal     int
	Hash        string
	Ready       bool
	Available   bool
	Terminating bool
}

// rolloutPlan says which pods to create and which to stop.
type rolloutPlan struct {
	// Create is the number of new Deployment pods to start.
	Create int
	// CreateOrdinals are the StatefulSet ordinals to start.
	CreateOrdinals []int
	// Delete names the pods to stop.
	Delete []string
}

// rollingParams returns the surge and the unavailability a rolling Deployment allows, as
// the Deployment controller scales them (surge rounds up, unavailability down, and both
// zero means a surge of one).
func rollingParams(replicas int32, s appsv1.DeploymentStrategy) (surge, unavailable int) {
	quarter := intstr.FromString("25%")
	maxSurge, maxUnavailable := &quarter, &quarter
	if s.RollingUpdate != nil {
		if s.RollingUpdate.MaxSurge != nil {
			maxSurge = s.RollingUpdate.MaxSurge
		}
		if s.RollingUpdate.MaxUnavailable != nil {
			maxUnavailable = s.RollingUpdate.MaxUnavailable
		}
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(replicas), true)
	if err != nil {
		surge = 1
	}
	unavailable, err = intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(replicas), false)
	if err != nil {
		unavailable = 0
	}
	if surge == 0 && unavailable == 0 {
		surge = 1
	}
	return surge, unavailable
}

// planDeployment decides the next step of a Deployment towards replicas pods of the
// template hash: scale, or roll old pods to new within the strategy's surge and
// unavailability budget. Pods that are still terminating count for nothing but block a
// Recreate rollout until they are gone.
func planDeployment(replicas int32, strategy appsv1.DeploymentStrategy, hash string, pods []podSummary) rolloutPlan {
	var current, old []podSummary
	terminatingOld := false
	for _, p := range pods {
		switch {
		case p.Terminating:
			if p.Hash != hash {
				terminatingOld = true
			}
		case p.Hash == hash:
			current = append(current, p)
		default:
			old = append(old, p)
		}
	}
	want := int(replicas)
	var plan rolloutPlan
	if len(current) > want {
		extra := namesNotReadyFirst(current)[:len(current)-want]
		plan.Delete = append(plan.Delete, extra...)
		current = without(current, extra)
	}

	if strategy.Type == appsv1.RecreateDeploymentStrategyType {
		if len(old) > 0 {
			plan.Delete = append(plan.Delete, namesNotReadyFirst(old)...)
			return plan
		}
		if terminatingOld {
			return plan
		}
		plan.Create = want - len(current)
		return plan
	}

	surge, unavailable := rollingParams(replicas, strategy)
	active := len(current) + len(old)
	if n := min(want-len(current), want+surge-active); n > 0 {
		plan.Create = n
	}
	ready := 0
	for _, p := range append(append([]podSummary(nil), current...), old...) {
		if p.Ready {
			ready++
		}
	}
	minReady := want - unavailable
	for _, name := range namesNotReadyFirst(old) {
		p := findPod(old, name)
		if !p.Ready {
			plan.Delete = append(plan.Delete, name)
			continue
		}
		if ready-1 < minReady {
			break
		}
		ready--
		plan.Delete = append(plan.Delete, name)
	}
	return plan
}

// planStatefulSet decides the next step of a StatefulSet: stop ordinals at or above
// replicas (highest first), start missing ordinals (one at a time, each after the lower
// ones are ready, unless pods are managed in parallel), and with the RollingUpdate
// strategy replace the highest pod of an old template once every pod is ready.
func planStatefulSet(replicas int32, parallel, rolling bool, hash string, pods []podSummary) rolloutPlan {
	byOrdinal := map[int]podSummary{}
	terminating := false
	for _, p := range pods {
		byOrdinal[p.Ordinal] = p
		terminating = terminating || p.Terminating
	}
	want := int(replicas)
	var plan rolloutPlan

	var excess []podSummary
	for _, p := range pods {
		if p.Ordinal >= want && !p.Terminating {
			excess = append(excess, p)
		}
	}
	sort.Slice(excess, func(i, j int) bool { return excess[i].Ordinal > excess[j].Ordinal })
	if len(excess) > 0 {
		if !parallel {
			excess = excess[:1]
		}
		for _, p := range excess {
			plan.Delete = append(plan.Delete, p.Name)
		}
		return plan
	}

	allReady := true
	for i := 0; i < want; i++ {
		p, ok := byOrdinal[i]
		if ok {
			allReady = allReady && p.Ready && !p.Terminating
			continue
		}
		allReady = false
		if parallel {
			plan.CreateOrdinals = append(plan.CreateOrdinals, i)
			continue
		}
		if lowerReady(byOrdinal, i) {
			plan.CreateOrdinals = append(plan.CreateOrdinals, i)
		}
		break
	}
	if !rolling || !allReady || terminating {
		return plan
	}
	for i := want - 1; i >= 0; i-- {
		if p := byOrdinal[i]; p.Hash != hash {
			plan.Delete = append(plan.Delete, p.Name)
			break
		}
	}
	return plan
}

func lowerReady(byOrdinal map[int]podSummary, ordinal int) bool {
	for i := 0; i < ordinal; i++ {
		p, ok := byOrdinal[i]
		if !ok || !p.Ready || p.Terminating {
			return false
		}
	}
	return true
}

// namesNotReadyFirst orders pods for stopping: not-ready pods first, then by name.
func namesNotReadyFirst(pods []podSummary) []string {
	sorted := append([]podSummary(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Ready != sorted[j].Ready {
			return !sorted[i].Ready
		}
		return sorted[i].Name < sorted[j].Name
	})
	names := make([]string, len(sorted))
	for i, p := range sorted {
		names[i] = p.Name
	}
	return names
}

func without(pods []podSummary, names []string) []podSummary {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var kept []podSummary
	for _, p := range pods {
		if !drop[p.Name] {
			kept = append(kept, p)
		}
	}
	return kept
}

func findPod(pods []podSummary, name string) podSummary {
	for _, p := range pods {
		if p.Name == name {
			return p
		}
	}
	return podSummary{}
}
