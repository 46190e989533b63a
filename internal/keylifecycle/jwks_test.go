package keylifecycle

import (
	"testing"
	"time"
)

func TestJWKSMaxAge_StaysBelowThePublishTime(t *testing.T) {
	for _, tc := range []struct {
		publish, want time.Duration
	}{
		{0, DefaultJWKSMaxAge},
		{DefaultMinPublishTime, DefaultJWKSMaxAge},
		{time.Hour, DefaultJWKSMaxAge},
		{time.Second, time.Second},
		{3 * time.Second, time.Second},
		{7 * time.Second, time.Second},
		{time.Minute, 12 * time.Second},
		{4*time.Minute + 59*time.Second, 59 * time.Second},
	} {
		if got := JWKSMaxAge(tc.publish); got != tc.want {
			t.Errorf("JWKSMaxAge(%s) = %s, want %s", tc.publish, got, tc.want)
		}
	}
}

// TestJWKSMaxAgeDefault_ExpiresBeforeANextKeyMaySign checks the default cache lifetime
// of the JWKS against the key lifecycle: a copy cached just before a next key reached the
// pods (the kubelet's propagation, up to about two minutes) must expire before the
// operator lets that key sign.
func TestJWKSMaxAgeDefault_ExpiresBeforeANextKeyMaySign(t *testing.T) {
	const kubeletPropagation = 2 * time.Minute
	if DefaultJWKSMaxAge+kubeletPropagation >= DefaultMinPublishTime {
		t.Fatalf("--jwks-max-age %s + propagation %s reaches the minimum publish time %s: a cached JWKS could lack a newly active key",
			DefaultJWKSMaxAge, kubeletPropagation, DefaultMinPublishTime)
	}
}
