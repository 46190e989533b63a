package clientauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
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
// ServiceAccount or Pod stops obtaining tokens within it.
const CacheTTL = time.Minute

// DefaultCacheSize bounds the cached answers.
const DefaultCacheSize = 1024

// reviewTimeout bounds one TokenReview.
const reviewTimeout = 5 * time.Second

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
}

// Authenticator tells who a caller is and whether it may obtain tokens.
type Authenticator struct {
	cfg   Config
	cache *expirable.LRU[[sha256.Size]byte, result]
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
}

// New makes an Authenticator of cfg.
func New(cfg Config) *Authenticator {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	return &Authenticator{cfg: cfg, cache: expirable.NewLRU[[sha256.Size]byte, result](cfg.CacheSize, nil, CacheTTL)}
}

// Authorize authenticates the bearer token of a caller and checks the client list.
// Errors: ErrUnauthenticated, ErrForbidden, or the API server's failure.
func (a *Authenticator) Authorize(ctx context.Context, bearer string) (ServiceAccount, error) {
	sa, err := a.authenticate(ctx, bearer)
	if err != nil {
		return ServiceAccount{}, err
	}
	if !slices.Contains(a.cfg.Clients, sa) {
		return sa, fmt.Errorf("%w: %s is not in --issuance-clients", ErrForbidden, sa)
	}
	return sa, nil
}

// authenticate asks the API server who bearer is, or answers from the cache. Only
// answers of the API server are cached, never a failure to reach it.
func (a *Authenticator) authenticate(ctx context.Context, bearer string) (ServiceAccount, error) {
	key := sha256.Sum256([]byte(bearer))
	if r, ok := a.cache.Get(key); ok {
		return r.account, r.err
	}
	// The review outlives a caller that goes away (it answers the others), within
	// reviewTimeout; each caller stops waiting when its own context ends.
	shared := context.WithoutCancel(ctx)
	answer := a.reviews.DoChan(string(key[:]), func() (any, error) {
		if r, ok := a.cache.Get(key); ok {
			return r, nil
		}
		ctx, cancel := context.WithTimeout(shared, reviewTimeout)
		defer cancel()
		review, err := a.cfg.Reviews.Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: bearer, Audiences: []string{a.cfg.Audience}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("reviewing the caller's token: %w", err)
		}
		r := decide(review.Status, a.cfg.Audience)
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

// decide turns a TokenReview's status into a ServiceAccount or a refusal.
func decide(st authenticationv1.TokenReviewStatus, audience string) result {
	if !st.Authenticated || (audience != "" && !slices.Contains(st.Audiences, audience)) {
		return result{err: ErrUnauthenticated}
	}
	rest, ok := strings.CutPrefix(st.User.Username, serviceAccountPrefix)
	ns, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || name == "" {
		return result{err: fmt.Errorf("%w: %w", ErrForbidden, ErrNotServiceAccount)}
	}
	return result{account: ServiceAccount{Namespace: ns, Name: name}}
}
