package version

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCommitOf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"no vcs stamp", nil, "unknown"},
		{"clean tree", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}, "abc123"},
		{"dirty tree", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}, "abc123-dirty"},
		{"modified without a revision", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commitOf(tc.settings); got != tc.want {
				t.Errorf("commitOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInfo_StringNamesVersionCommitAndGo(t *testing.T) {
	got := Info{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26.8"}.String()
	if want := "v1.2.3 (commit abc, go1.26.8)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestCollector_ExportsOneBuildInfoOfThisBuild(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector("authserver"))
	families, err := reg.Gather()
	if err != nil || len(families) != 1 {
		t.Fatalf("gathered %d families, %v", len(families), err)
	}
	f := families[0]
	if f.GetName() != "authserver_build_info" || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("family %v", f)
	}
	labels := map[string]string{}
	for _, l := range f.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if want := Get(); labels["version"] != want.Version || labels["commit"] != want.Commit || labels["goversion"] != want.GoVersion {
		t.Errorf("labels %v, want those of %+v", labels, want)
	}
}
