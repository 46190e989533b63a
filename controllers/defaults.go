package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// The operator's values for spec fields left empty. They are the CRD's defaults (the API
// server fills them in on write); the operator applies them again so that a spec written
// before a default existed, or built in a test, gives the same objects.
const (
	defaultServerPort         int32 = 80
	defaultRefreshLifetime          = 720 * time.Hour
	defaultSessionMaxLifetime       = 2160 * time.Hour
	defaultLeeway                   = 30 * time.Second
	defaultRefreshGracePeriod       = 30 * time.Second
	defaultRefreshesPerMinute       = int32(10)
)

// withDefaults is the one place the builders' defaults live (those of the managed Redis are
// managedredis.Spec's): it returns a copy of spec with every empty field they read filled
// in. The input is left as it is, as it is the user's.
func withDefaults(spec *authv1alpha1.AuthServiceSpec) *authv1alpha1.AuthServiceSpec {
	d := spec.DeepCopy()
	if d.Server.Port == 0 {
		d.Server.Port = defaultServerPort
	}
	if d.Server.PodDisruptionBudget.MaxUnavailable == nil {
		d.Server.PodDisruptionBudget.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	}
	if d.Tokens.RefreshLifetime.Duration == 0 {
		d.Tokens.RefreshLifetime = metav1.Duration{Duration: defaultRefreshLifetime}
	}
	if d.Tokens.Leeway.Duration == 0 {
		d.Tokens.Leeway = metav1.Duration{Duration: defaultLeeway}
	}
	if d.Tokens.SessionMaxLifetime.Duration == 0 {
		d.Tokens.SessionMaxLifetime = metav1.Duration{Duration: defaultSessionMaxLifetime}
	}
	if d.Issuance.RefreshGracePeriod == nil {
		d.Issuance.RefreshGracePeriod = &metav1.Duration{Duration: defaultRefreshGracePeriod}
	}
	if d.Issuance.RefreshesPerMinute == nil {
		d.Issuance.RefreshesPerMinute = ptr.To(defaultRefreshesPerMinute)
	}
	return d
}
