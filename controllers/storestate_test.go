package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func TestBlacklistIntact_FromTheIssuersRecord(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	const outlives = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		data    map[string]string
		status  metav1.ConditionStatus
		reason  string
		msg     []string
		recheck time.Duration
	}{
		{"empty ConfigMap", nil, metav1.ConditionUnknown, authv1alpha1.ReasonNotReported, []string{"not yet recorded"}, 0},
		{"never lost", map[string]string{"generation": "g1", "lostAt": "", "previousGeneration": "", "notBefore": ""},
			metav1.ConditionTrue, authv1alpha1.ReasonIntact, []string{"generation g1"}, 0},
		{"lost an hour ago", map[string]string{"generation": "g2", "lostAt": "2026-12-02T11:00:00Z", "previousGeneration": "g1", "notBefore": "2026-12-02T11:00:01Z"},
			metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost,
			[]string{"lost its data at 2026-12-02T11:00:00Z", "generation g1", "tokens issued before 2026-12-02T11:00:01Z are refused until they expire", "new logins work"},
			23*time.Hour + time.Second},
		{"lost without a cutoff recorded", map[string]string{"generation": "g2", "lostAt": "2026-12-02T11:00:00Z"},
			metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, []string{"tokens issued before 2026-12-02T11:00:00Z are refused", "generation unknown"}, 23 * time.Hour},
		{"lost long ago: every refused token expired", map[string]string{"generation": "g2", "lostAt": "2026-11-30T11:00:00Z", "previousGeneration": "g1", "notBefore": "2026-11-30T11:00:00Z"},
			metav1.ConditionTrue, authv1alpha1.ReasonIntact, []string{"lost generation g1 at 2026-11-30T11:00:00Z", "has expired since"}, 0},
		{"a time that does not parse", map[string]string{"generation": "g2", "lostAt": "yesterday"},
			metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, []string{`"yesterday" does not parse`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, recheck := blacklistIntact(tc.data, now, outlives)
			if c.Status != tc.status || c.Reason != tc.reason || recheck != tc.recheck {
				t.Errorf("= %s %s recheck %s, want %s %s %s (%q)", c.Status, c.Reason, recheck, tc.status, tc.reason, tc.recheck, c.Message)
			}
			for _, m := range tc.msg {
				if !strings.Contains(c.Message, m) {
					t.Errorf("message %q lacks %q", c.Message, m)
				}
			}
		})
	}
}
