package userlogouts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/namedwatch"
	"github.com/hiringo/auth-operator/authserver/sessions"
)

// Config is what Run needs.
type Config struct {
	Client          kubernetes.Interface
	Namespace, Name string
	// Sessions sets and reads users' cutoffs, and says how long the store keeps them.
	Sessions *sessions.Service
	// Applier names this issuer in the requests it applies (its pod name).
	Applier string
	Logger  *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// retryInterval is the pause between attempts to set a cutoff or record it.
const retryInterval = 200 * time.Millisecond

// recordAttempts bounds the attempts to record applied requests; the informer's
// resync brings a request that stayed unrecorded back (applying it again only moves
// the cutoff later).
const recordAttempts = 5

// Run follows the ConfigMap until ctx ends, applying each pending request.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	configMaps := func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().ConfigMaps().Informer()
	}
	if err := namedwatch.Run(ctx, cfg.Client, cfg.Namespace, cfg.Name, configMaps, func(obj any) { observe(ctx, cfg, obj) }); err != nil {
		return fmt.Errorf("following ConfigMap: %w", err)
	}
	return nil
}

// observe applies the pending requests of one version of the ConfigMap and records
// them, forgetting the expired ones. Handlers of one informer run one at a time.
func observe(ctx context.Context, cfg Config, obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	plan := PlanOf(cm.Data, cfg.Now(), cfg.Sessions.Lifetimes().UserEntryExpiry)
	for k, err := range plan.Invalid {
		cfg.Logger.Error("user logout request is not valid; left untouched", "configmap", cfg.Name, "request", k, "err", err)
	}
	if !confirmApplied(ctx, cfg, &plan) {
		return
	}
	if len(plan.Pending) == 0 && len(plan.Forget) == 0 {
		return
	}
	changes := map[string]*string{}
	for _, k := range plan.Pending {
		r := plan.Requests[k]
		at, err := apply(ctx, cfg, r.UserID)
		if err != nil {
			return
		}
		r.AppliedAt, r.AppliedBy = &at, cfg.Applier
		v := r.Encode()
		changes[k] = &v
		audit.Log(ctx, cfg.Logger, audit.Record{Event: audit.LogoutUser, UserID: r.UserID, Caller: r.RequestedBy, Request: k})
	}
	for _, k := range plan.Forget {
		changes[k] = nil
	}
	record(ctx, cfg, changes)
}

// confirmApplied moves back to pending every request whose application the store does
// not confirm: anyone who may write the ConfigMap may write appliedAt too, and so cancel a
// request the issuers have not applied yet. An application is confirmed when the user's
// cutoff in the store is at least appliedAt (cutoffs only move later, and appliedAt is the
// cutoff the issuer set). It reports false when the store cannot be read (the next
// version or resync tries again).
func confirmApplied(ctx context.Context, cfg Config, plan *Plan) bool {
	for _, k := range plan.Applied {
		r := plan.Requests[k]
		cutoff, err := cfg.Sessions.UserCutoff(ctx, r.UserID)
		if err != nil {
			cfg.Logger.Error("reading a user's cutoff to confirm a logout request failed; retrying on the next change", "err", err)
			return false
		}
		if cutoff.Before(r.AppliedAt.Truncate(time.Second)) {
			cfg.Logger.Error("user logout request is marked applied but the store holds no such cutoff; applying it", "configmap", cfg.Name, "request", k)
			plan.Pending = append(plan.Pending, k)
		}
	}
	plan.sortPending()
	return true
}

// apply sets the user's cutoff at now (Redis' clock), retrying while the store is
// down, and returns it; an error only when ctx ends.
func apply(ctx context.Context, cfg Config, userID string) (time.Time, error) {
	for {
		cutoff, err := cfg.Sessions.LogoutUser(ctx, userID)
		if err == nil {
			return cutoff.UTC(), nil
		}
		cfg.Logger.Error("applying a user logout request failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(retryInterval):
		}
	}
}

// record writes the applied requests and drops the forgotten ones with one merge
// patch of only those keys: requests written meanwhile are not touched.
func record(ctx context.Context, cfg Config, changes map[string]*string) {
	patch, err := json.Marshal(map[string]any{"data": changes})
	if err != nil {
		cfg.Logger.Error("encoding the user logout record failed", "err", err)
		return
	}
	for attempt := 1; ; attempt++ {
		_, err := cfg.Client.CoreV1().ConfigMaps(cfg.Namespace).Patch(ctx, cfg.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "authserver"})
		if err == nil {
			return
		}
		if attempt == recordAttempts || ctx.Err() != nil {
			cfg.Logger.Error("recording applied user logout requests failed; they are applied again on the next resync", "configmap", cfg.Name, "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(retryInterval):
		}
	}
}
