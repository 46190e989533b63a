package clientauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/utils/clock"
)

// ErrUnauthenticated is returned for a token the API server does not accept for the
// audience: the caller is unknown (401).
var ErrUnauthenticated = errors.New("caller not authenticated")

// ErrForbidden is returned for a ServiceAccount that is not an issuance client (403).
var ErrForbidden = errors.New("caller may not obtain tokens")

// ErrNotServiceAccount is wrapped in ErrForbidden for an authenticated user that is
// not a ServiceAccount.
var ErrNotServiceAccount = errors.New("caller is not a ServiceAccount")

// CacheTTL is the longest an answer of the API server is reused: a deleted
// ServiceAccount or Pod stops obtaining tokens within it. No answer outlives the token's
// own exp.
const CacheTTL = time.Minute

// FailureTTL is how long a token whose review failed (the API server did not answer, or
// the review limiter had no room) is refused without asking again.
const FailureTTL = 5 * time.Second

// DefaultCacheSize bounds the cached answers.
const DefaultCacheSize = 1024

// Review limiter defaults: the TokenReviews of one issuer pod, apart from its other calls
// to the API server (client-go's shared limiter is 5 per second).
const (
	DefaultReviewQPS   = 20
	DefaultReviewBurst = 40
)

// reviewTimeout bounds one TokenReview, the wait for the limiter included.
const reviewTimeout = 5 * time.Second

// maxBearerBytes bounds a caller's token: a projected ServiceAccount token is about 1 KiB.
const maxBearerBytes = 16 << 10

// precheckLeeway is the clock skew the pre-check allows on nbf and iat; exp is exact, so
// no answer, cached or not, outlives the token.
const precheckLeeway = time.Minute

// serviceAccountAlgorithms are the algorithms the API server signs ServiceAccount tokens
// with (RSA or ECDSA keys).
var serviceAccountAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// ServiceAccount names one ServiceAccount.
type ServiceAccount struct {
	Namespace, Name string
}

// String is "namespace/name".
func (s ServiceAccount) String() string { return s.Namespace + "/" + s.Name }

// Username is the ServiceAccount's Kubernetes user name,
// "system:serviceaccount:namespace:name": the client_id of the tokens it obtains.
func (s ServiceAccount) Username() string {
	return serviceAccountPrefix + s.Namespace + ":" + s.Name
}

// serviceAccountPrefix starts the user name of every ServiceAccount.
const serviceAccountPrefix = "system:serviceaccount:"

// ParseClients parses "ns/sa,ns/sa" entries (as --issuance-clients takes them).
func ParseClients(entries []string) ([]ServiceAccount, error) {
	out := make([]ServiceAccount, 0, len(entries))
	for _, e := range entries {
		ns, name, ok := strings.Cut(strings.TrimSpace(e), "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			return nil, fmt.Errorf("issuance client %q is not namespace/serviceaccount", e)
		}
		out = append(out, ServiceAccount{Namespace: ns, Name: name})
	}
	return out, nil
}

// Config is what an Authenticator needs.
type Config struct {
	// Reviews creates TokenReviews: a client of the API server.
	Reviews authv1client.TokenReviewInterface
	// Audience is the audience a caller's token must carry.
	Audience string
	// Clients may obtain tokens; empty allows no one.
	Clients []ServiceAccount
	// CacheSize bounds the cached answers; DefaultCacheSize when 0.
	CacheSize int
	// Keys are the cluster's ServiceAccount issuer and token keys: a bearer that does not
	// carry that iss and a valid signature by one of them is refused without a review.
	// Nil, or while they cannot be read, only the claims are checked before a review.
	Keys *ClusterKeys
	// ReviewQPS and ReviewBurst limit the TokenReviews this Authenticator makes;
	// DefaultReviewQPS and DefaultReviewBurst when 0.
	ReviewQPS   float64
	ReviewBurst int
	// Clock is the time source of the checks of exp and of the cached answers; nil is
	// the real clock.
	Clock clock.PassiveClock
}

// Authenticator tells who a caller is and whether it may obtain tokens.
type Authenticator struct {
	cfg     Config
	limiter *rate.Limiter
	cache   *expirable.LRU[[sha256.Size]byte, result]
	// reviews lets concurrent callers with the same uncached token share one review:
	// without it, every request of a busy login service asks the API server at once
	// when the cached answer expires, and client-go's rate limit holds them for
	// seconds.
	reviews singleflight.Group
}

// result is one cached answer of the API server.
type result struct {
	account ServiceAccount
	err     error
	// until is when the answer expires: CacheTTL after it was given, or FailureTTL for a
	// failed review, and never after the token's exp.
	until time.Time
}

// New makes an Authenticator of cfg.
func New(cfg Config) *Authenticator {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ReviewQPS <= 0 {
		cfg.ReviewQPS = DefaultReviewQPS
	}
	if cfg.ReviewBurst <= 0 {
		cfg.ReviewBurst = DefaultReviewBurst
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Authenticator{
		cfg:     cfg,
		limiter: rate.NewLimiter(rate.Limit(cfg.ReviewQPS), cfg.ReviewBurst),
		cache:   expirable.NewLRU[[sha256.Size]byte, result](cfg.CacheSize, nil, CacheTTL),
	}
}

// Authorize authenticates the bearer token of a caller and checks the client list.
// Errors: ErrUnauthenticated, ErrForbidden (with the caller's ServiceAccount when the
// cluster's signature vouches for it), or the API server's failure.
//
// A bearer is reviewed only when it can be a ServiceAccount token of this cluster for a
// listed client: a JWT of the API server's algorithms, for the audience, not expired,
// naming a listed ServiceAccount, with the cluster's iss and signature (when Keys are
// known). Anything else is refused on the spot, so junk costs no TokenReview.
//
// The answer for a bearer that passed the pre-check is cached whole: a caller presenting
// the same token again costs a hash and a lookup, not a signature check.
func (a *Authenticator) Authorize(ctx context.Context, bearer string) (ServiceAccount, error) {
	if len(bearer) > maxBearerBytes {
		return ServiceAccount{}, ErrUnauthenticated
	}
	key := sha256.Sum256([]byte(bearer))
	if r, ok := a.cached(key); ok {
		return r.account, r.err
	}
	claimed, exp, err := a.precheck(ctx, bearer)
	if err != nil {
		return claimed, err
	}
	return a.authenticate(ctx, key, bearer, claimed, exp)
}

// serviceAccountClaims are the claims of a ServiceAccount token the pre-check reads.
type serviceAccountClaims struct {
	jwt.Claims
}

// precheck refuses a bearer that cannot be a ServiceAccount token of this cluster for a
// listed client, and returns the account it names and its exp.
func (a *Authenticator) precheck(ctx context.Context, bearer string) (ServiceAccount, time.Time, error) {
	tok, err := jwt.ParseSigned(bearer, serviceAccountAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return ServiceAccount{}, time.Time{}, ErrUnauthenticated
	}
	var claims serviceAccountClaims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil || claims.Expiry == nil {
		return ServiceAccount{}, time.Time{}, ErrUnauthenticated
	}
	now := a.cfg.Clock.Now()
	expected := jwt.Expected{Time: now}
	if a.cfg.Audience != "" {
		expected.AnyAudience = jwt.Audience{a.cfg.Audience}
	}
	// exp is exact: an answer given for the token, cached or not, ends with it.
	if err := claims.ValidateWithLeeway(expected, precheckLeeway); err != nil || !now.Before(claims.Expiry.Time()) {
		return ServiceAccount{}, time.Time{}, ErrUnauthenticated
	}
	sa, ok := parseServiceAccountUser(claims.Subject)
	if !ok {
		return ServiceAccount{}, time.Time{}, fmt.Errorf("%w: %w", ErrForbidden, ErrNotServiceAccount)
	}
	signed := false
	if a.cfg.Keys != nil {
		issuer, keys, err := a.cfg.Keys.lookup(ctx, tok.Headers[0].KeyID)
		if err == nil {
			// The keys are known: the token must be the cluster's. While they cannot be
			// read, the review decides alone.
			if claims.Issuer != issuer || !signedByOneOf(tok, keys) {
				return ServiceAccount{}, time.Time{}, ErrUnauthenticated
			}
			signed = true
		}
	}
	if !slices.Contains(a.cfg.Clients, sa) {
		// A caller refused here is named (for the audit trail) only when the cluster's
		// signature vouches for the token: a forged one names whom it likes.
		named := ServiceAccount{}
		if signed {
			named = sa
		}
		return named, time.Time{}, fmt.Errorf("%w: %s is not in --issuance-clients", ErrForbidden, sa)
	}
	return sa, claims.Expiry.Time(), nil
}

// signedByOneOf reports whether one of keys verifies tok's signature.
func signedByOneOf(tok *jwt.JSONWebToken, keys []jose.JSONWebKey) bool {
	for _, k := range keys {
		var out map[string]any
		if err := tok.Claims(k.Key, &out); err == nil {
			return true
		}
	}
	return false
}

// authenticate asks the API server who bearer (whose hash is key) is, the pre-check
// having found it names claimed, and caches the answer until CacheTTL or the token's exp,
// whichever is first; a failure to get one, FailureTTL.
func (a *Authenticator) authenticate(ctx context.Context, key [sha256.Size]byte, bearer string, claimed ServiceAccount, exp time.Time) (ServiceAccount, error) {
	// The review outlives a caller that goes away (it answers the others), within
	// reviewTimeout; each caller stops waiting when its own context ends.
	shared := context.WithoutCancel(ctx)
	answer := a.reviews.DoChan(string(key[:]), func() (any, error) {
		if r, ok := a.cached(key); ok {
			return r, nil
		}
		ctx, cancel := context.WithTimeout(shared, reviewTimeout)
		defer cancel()
		r, err := a.review(ctx, bearer)
		now := a.cfg.Clock.Now()
		if err != nil {
			a.cache.Add(key, result{err: err, until: earlier(now.Add(FailureTTL), exp)})
			return nil, err
		}
		if r.err == nil && r.account != claimed {
			// The API server names another account than the token: not a token of ours.
			r = result{err: ErrUnauthenticated}
		}
		r.until = earlier(now.Add(CacheTTL), exp)
		a.cache.Add(key, r)
		return r, nil
	})
	select {
	case res := <-answer:
		if res.Err != nil {
			return ServiceAccount{}, res.Err
		}
		r := res.Val.(result)
		return r.account, r.err
	case <-ctx.Done():
		return ServiceAccount{}, fmt.Errorf("reviewing the caller's token: %w", ctx.Err())
	}
}

// review makes one TokenReview, within the review limiter.
func (a *Authenticator) review(ctx context.Context, bearer string) (result, error) {
	if err := a.limiter.Wait(ctx); err != nil {
		return result{}, fmt.Errorf("reviewing the caller's token: too many reviews: %w", err)
	}
	review, err := a.cfg.Reviews.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: bearer, Audiences: []string{a.cfg.Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return result{}, fmt.Errorf("reviewing the caller's token: %w", err)
	}
	return decide(review.Status, a.cfg.Audience), nil
}

// cached is the cached answer for key while it has not expired.
func (a *Authenticator) cached(key [sha256.Size]byte) (result, bool) {
	r, ok := a.cache.Get(key)
	if !ok {
		return result{}, false
	}
	if !a.cfg.Clock.Now().Before(r.until) {
		a.cache.Remove(key)
		return result{}, false
	}
	return r, true
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// parseServiceAccountUser reads "system:serviceaccount:<namespace>:<name>".
func parseServiceAccountUser(user string) (ServiceAccount, bool) {
	rest, ok := strings.CutPrefix(user, serviceAccountPrefix)
	ns, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || name == "" {
		return ServiceAccount{}, false
	}
	return ServiceAccount{Namespace: ns, Name: name}, true
}

// decide turns a TokenReview's status into a ServiceAccount or a refusal.
func decide(st authenticationv1.TokenReviewStatus, audience string) result {
	if !st.Authenticated || (audience != "" && !slices.Contains(st.Audiences, audience)) {
		return result{err: ErrUnauthenticated}
	}
	sa, ok := parseServiceAccountUser(st.User.Username)
	if !ok {
		return result{err: fmt.Errorf("%w: %w", ErrForbidden, ErrNotServiceAccount)}
	}
	return result{account: sa}
}
