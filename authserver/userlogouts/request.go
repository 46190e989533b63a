package userlogouts

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// MaxUserIDBytes is the longest user id a request may name, as the issuer accepts it in
// POST /auth/token.
const MaxUserIDBytes = 512

// Request is the value of one entry of the ConfigMap, as JSON; its key names the request.
type Request struct {
	// UserID is the user.id whose every token issued up to the application is refused.
	UserID string `json:"userID"`
	// RequestedAt is when the request was written (the requester's clock).
	RequestedAt time.Time `json:"requestedAt"`
	// RequestedBy is the Kubernetes user who wrote it, as the API server named them to
	// the requester (SelfSubjectReview); empty when it could not tell.
	RequestedBy string `json:"requestedBy,omitempty"`
	// AppliedAt is when an issuer set the user's cutoff: tokens issued at or before it
	// are refused. Nil while pending.
	AppliedAt *time.Time `json:"appliedAt,omitempty"`
	// AppliedBy is the issuer pod that applied it.
	AppliedBy string `json:"appliedBy,omitempty"`
}

// NewKey names a new request: its time and random bytes, a valid ConfigMap key that no
// other request takes.
func NewKey(now time.Time) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	return "logout-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// New is a pending request for userID; its error names what to fix.
func New(userID, requestedBy string, now time.Time) (Request, error) {
	r := Request{UserID: userID, RequestedAt: now.UTC().Truncate(time.Second), RequestedBy: requestedBy}
	return r, r.validate()
}

func (r Request) validate() error {
	switch {
	case r.UserID == "":
		return errors.New("the user id is empty")
	case len(r.UserID) > MaxUserIDBytes:
		return fmt.Errorf("the user id is longer than %d bytes", MaxUserIDBytes)
	}
	return nil
}

// MaxClockSkew is how far in the future a request's times may lie: the requester's and
// the issuers' clocks may differ by that much.
const MaxClockSkew = 5 * time.Minute

// applicationPossible reports whether r's appliedAt can be an issuer's: not before the
// request (minus the clocks' skew) nor in the future.
func (r Request) applicationPossible(now time.Time) bool {
	return r.AppliedAt != nil && r.AppliedBy != "" &&
		!r.AppliedAt.Before(r.RequestedAt.Add(-MaxClockSkew)) && !r.AppliedAt.After(now.Add(MaxClockSkew))
}

// Encode is the entry's value.
func (r Request) Encode() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("encoding a logout request: %v", err))
	}
	return string(b)
}

// Parse reads an entry's value.
func Parse(value string) (Request, error) {
	var r Request
	if err := json.Unmarshal([]byte(value), &r); err != nil {
		return Request{}, fmt.Errorf("not a logout request (JSON with userID and requestedAt): %w", err)
	}
	if err := r.validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Plan is what an issuer does with the ConfigMap's entries.
type Plan struct {
	// Pending are the keys of requests to apply, oldest first: those not applied, and
	// those whose appliedAt no issuer can have written (before the request, in the
	// future, or without appliedBy).
	Pending []string
	// Applied are the keys of requests marked applied and not yet forgotten: the store
	// is asked whether it holds their cutoff (an issuer confirms them before it trusts
	// them).
	Applied []string
	// Forget are the keys of applied requests whose cutoff the blacklist has forgotten:
	// every token it refused has expired, so the record goes too.
	Forget []string
	// Invalid are the keys whose value is not a request, with why; left untouched.
	Invalid map[string]error
	// Requests are the parsed entries by key.
	Requests map[string]Request
}

// PlanOf sorts the entries of data at now; until is when a cutoff applied at a time is
// forgotten by the blacklist.
func PlanOf(data map[string]string, now time.Time, until func(applied time.Time) time.Time) Plan {
	p := Plan{Requests: make(map[string]Request, len(data))}
	for k, v := range data {
		r, err := Parse(v)
		if err != nil {
			if p.Invalid == nil {
				p.Invalid = map[string]error{}
			}
			p.Invalid[k] = err
			continue
		}
		p.Requests[k] = r
		switch {
		case r.AppliedAt == nil || !r.applicationPossible(now):
			p.Pending = append(p.Pending, k)
		case !until(*r.AppliedAt).After(now):
			p.Forget = append(p.Forget, k)
		default:
			p.Applied = append(p.Applied, k)
		}
	}
	p.sortPending()
	sort.Strings(p.Forget)
	sort.Strings(p.Applied)
	return p
}

// sortPending puts the pending requests oldest first.
func (p *Plan) sortPending() {
	sort.Slice(p.Pending, func(i, j int) bool {
		a, b := p.Requests[p.Pending[i]], p.Requests[p.Pending[j]]
		if !a.RequestedAt.Equal(b.RequestedAt) {
			return a.RequestedAt.Before(b.RequestedAt)
		}
		return p.Pending[i] < p.Pending[j]
	})
}
