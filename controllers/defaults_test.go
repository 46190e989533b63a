package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func TestWithDefaults_FillsWhatIsEmptyAndKeepsWhatIsSet(t *testing.T) {
	cases := []struct {
		name  string
		spec  authv1alpha1.AuthServiceSpec
		check func(t *testing.T, d *authv1alpha1.AuthServiceSpec)
	}{{
		name: "empty spec gets the CRD's defaults (managedredis.Spec has the managed Redis's)",
		spec: authv1alpha1.AuthServiceSpec{},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			if d.Server.Port != 80 || d.Server.PodDisruptionBudget.MaxUnavailable.IntValue() != 1 ||
				d.Tokens.RefreshLifetime.Duration != 720*time.Hour || d.Tokens.Leeway.Duration != 30*time.Second {
				t.Errorf("server/tokens defaults = port %d, maxUnavailable %v, refresh %s, leeway %s", d.Server.Port,
					d.Server.PodDisruptionBudget.MaxUnavailable, d.Tokens.RefreshLifetime.Duration, d.Tokens.Leeway.Duration)
			}
			if d.Tokens.SessionMaxLifetime.Duration != 2160*time.Hour || d.Issuance.RefreshGracePeriod.Duration != 30*time.Second || *d.Issuance.RefreshesPerMinute != 10 {
				t.Errorf("session defaults = lifetime %s, grace %s, %d refreshes a minute", d.Tokens.SessionMaxLifetime.Duration, d.Issuance.RefreshGracePeriod.Duration, *d.Issuance.RefreshesPerMinute)
			}
		},
	}, {
		name: "values the user set are kept",
		spec: authv1alpha1.AuthServiceSpec{
			Server: authv1alpha1.ServerSpec{Port: 8443, PodDisruptionBudget: authv1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("50%"))}},
			Tokens: authv1alpha1.TokensSpec{RefreshLifetime: metav1.Duration{Duration: time.Hour}, Leeway: metav1.Duration{Duration: time.Second}},
		},
		check: func(t *testing.T, d *authv1alpha1.AuthServiceSpec) {
			if d.Server.Port != 8443 || d.Server.PodDisruptionBudget.MaxUnavailable.String() != "50%" ||
				d.Tokens.RefreshLifetime.Duration != time.Hour || d.Tokens.Leeway.Duration != time.Second {
				t.Errorf("server/tokens = %+v %+v", d.Server, d.Tokens)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.spec.DeepCopy()
			tc.check(t, withDefaults(&tc.spec))
			if !equality.Semantic.DeepEqual(before, &tc.spec) {
				t.Error("withDefaults changed its input")
			}
		})
	}
}
