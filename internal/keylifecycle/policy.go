package keylifecycle

import (
	"errors"
	"fmt"
	"time"
)

// DefaultMinPublishTime is how long a next key is published before it may sign when the
// policy sets no MinPublishTime. It covers the kubelet's propagation of a mounted Secret
// (its sync period plus its cache TTL, about two minutes by default) with room to spare, so
// no pod signs with a key another cannot verify. A scheduled rotation always meets it; it
// only delays a manual rotation requested right after another one. Revoking the active key
// is the one case that does not wait.
const DefaultMinPublishTime = 5 * time.Minute

// DefaultJWKSMaxAge is how long clients may cache the JWKS when next keys are published for
// DefaultMinPublishTime: the auth server's default --jwks-max-age. A next key reaches the
// pods up to about two minutes after the operator publishes it (the kubelet's Secret
// propagation) and may sign from the minimum publish time on: a copy cached just before the
// key reached the pods must expire before then, so the sum of the two stays below that time.
const DefaultJWKSMaxAge = time.Minute

// JWKSMaxAge is the Cache-Control max-age of the JWKS and public key when next keys are
// published for minPublishTime before they sign (zero means DefaultMinPublishTime): so
// that a client's cached JWKS expires, together with the kubelet's Secret propagation,
// before a next key may sign. At or above the default it is DefaultJWKSMaxAge; a shorter
// publish time gets a fifth of it (below the default), in whole seconds, at least one.
// The operator passes it to the auth server when it differs from DefaultJWKSMaxAge.
func JWKSMaxAge(minPublishTime time.Duration) time.Duration {
	if minPublishTime <= 0 || minPublishTime >= DefaultMinPublishTime {
		return DefaultJWKSMaxAge
	}
	return max((minPublishTime / 5).Truncate(time.Second), time.Second)
}

// MinRequeue is the shortest delay the plan ever asks for; it is never zero or negative.
const MinRequeue = time.Second

// Policy is what an AuthService's spec says about its keys.
type Policy struct {
	// RotationInterval is how long a key signs before the next one takes over.
	RotationInterval time.Duration
	// MaxTokenLifetime is the longest lifetime of an access token a key signs.
	MaxTokenLifetime time.Duration
	// RefreshLifetime is the lifetime of a refresh token a key signs; zero means no refresh
	// token outlives an access token (MaxTokenLifetime).
	RefreshLifetime time.Duration
	// Leeway is the clock skew verifiers tolerate.
	Leeway time.Duration
	// Revoked holds the kids that must be removed at once.
	Revoked []string
	// MinPublishTime is how long a next key is published before it may sign; zero means
	// DefaultMinPublishTime. It must exceed the kubelet's Secret propagation, so lower it
	// only where that is known to be fast.
	MinPublishTime time.Duration
}

// Validate reports a policy the lifecycle cannot follow.
func (p Policy) Validate() error {
	var errs []error
	if p.RotationInterval <= 0 {
		errs = append(errs, fmt.Errorf("rotation interval must be positive, got %s", p.RotationInterval))
	}
	if p.MaxTokenLifetime <= 0 {
		errs = append(errs, fmt.Errorf("maximum token lifetime must be positive, got %s", p.MaxTokenLifetime))
	}
	if p.RefreshLifetime != 0 && p.RefreshLifetime < p.MaxTokenLifetime {
		errs = append(errs, fmt.Errorf("refresh token lifetime %s must be at least the maximum token lifetime %s", p.RefreshLifetime, p.MaxTokenLifetime))
	}
	if p.Leeway < 0 {
		errs = append(errs, fmt.Errorf("leeway must not be negative, got %s", p.Leeway))
	}
	if p.MinPublishTime < 0 {
		errs = append(errs, fmt.Errorf("minimum publish time must not be negative, got %s", p.MinPublishTime))
	}
	return errors.Join(errs...)
}

// minPublishTime is how long a next key is published before it may sign.
func (p Policy) minPublishTime() time.Duration {
	if p.MinPublishTime == 0 {
		return DefaultMinPublishTime
	}
	return p.MinPublishTime
}

// retention is how long a retired key stays published (in the JWKS and the verifiers'
// projection) after the rotation that retired it.
// A replica keeps signing with the key until the kubelet delivers the rotated Secret, which
// the minimum publish time bounds; every token signed until then must outlive its lifetime
// plus leeway.
func (p Policy) retention() time.Duration {
	return p.minPublishTime() + p.MaxTokenLifetime + p.Leeway
}

// refreshRetention is how long a retired key stays in the signing-key Secret after the
// rotation that retired it: as retention, with the refresh token lifetime in place of the
// access token's, so the issuer can verify every refresh token the key signed.
func (p Policy) refreshRetention() time.Duration {
	return p.minPublishTime() + max(p.RefreshLifetime, p.MaxTokenLifetime) + p.Leeway
}

func (p Policy) revoked(kid string) bool {
	for _, r := range p.Revoked {
		if r == kid {
			return true
		}
	}
	return false
}
