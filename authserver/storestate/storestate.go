package storestate

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/blacklist"
)

// Recorder reads and writes one ConfigMap through the API. The operator creates it
// (empty) and owns it; the issuer may only get, update and patch it.
type Recorder struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Logger          *slog.Logger
}

// MaxClockSkew is how far in the future a recorded cutoff may lie and still be held: a
// detected loss's cutoff is the second after its detection, on some issuer's clock.
const MaxClockSkew = time.Minute

// Load returns the generation the ConfigMap records, zero when none yet. A cutoff later
// than now (beyond MaxClockSkew) is not held: no issuer writes one, and whoever may write
// the ConfigMap could otherwise refuse every token, new logins included, until then. It is
// logged; the generation is held without it.
func (r Recorder) Load(ctx context.Context) (blacklist.Generation, error) {
	cm, err := r.Client.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		return blacklist.Generation{}, fmt.Errorf("reading ConfigMap %s/%s (--store-state-configmap): %w", r.Namespace, r.Name, err)
	}
	g := blacklist.Generation{ID: cm.Data[authv1alpha1.StoreStateGenerationKey], Previous: cm.Data[authv1alpha1.StoreStatePreviousGenerationKey]}
	if nb := cm.Data[authv1alpha1.StoreStateNotBeforeKey]; nb != "" {
		at, err := time.Parse(time.RFC3339, nb)
		if err != nil {
			return blacklist.Generation{}, fmt.Errorf("ConfigMap %s/%s: %s %q is not RFC 3339: %w", r.Namespace, r.Name, authv1alpha1.StoreStateNotBeforeKey, nb, err)
		}
		if limit := time.Now().Add(MaxClockSkew); at.After(limit) {
			if r.Logger != nil {
				r.Logger.Error("the store state ConfigMap records a cutoff in the future, which no issuer writes; it is not held", "configmap", r.Namespace+"/"+r.Name, "notBefore", nb)
			}
			return g, nil
		}
		g.NotBefore = at.Unix()
	}
	return g, nil
}

// Start records events in the background until ctx ends and returns the function
// that hands it one: it never blocks, so the generation checks go on while the API is
// unreachable. A pending event is replaced by a newer one (Data derives everything
// from the latest); a failed write is retried every second.
func (r Recorder) Start(ctx context.Context) (record func(blacklist.GenerationEvent), done <-chan struct{}) {
	slot := make(chan blacklist.GenerationEvent, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			var ev blacklist.GenerationEvent
			select {
			case <-ctx.Done():
				return
			case ev = <-slot:
			}
			for {
				err := r.record(ctx, ev)
				if err == nil || ctx.Err() != nil {
					break
				}
				if r.Logger != nil {
					r.Logger.Warn("store state not recorded in its ConfigMap yet; retrying", "configmap", r.Namespace+"/"+r.Name, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case ev = <-slot:
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return func(ev blacklist.GenerationEvent) {
		for {
			select {
			case slot <- ev:
				return
			default:
			}
			select {
			case <-slot:
			default:
			}
		}
	}, finished
}

func (r Recorder) record(ctx context.Context, ev blacklist.GenerationEvent) error {
	cms := r.Client.CoreV1().ConfigMaps(r.Namespace)
	cm, err := cms.Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	next := Data(cm.Data, ev)
	if maps.Equal(cm.Data, next) {
		return nil
	}
	cm.Data = next
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// Data is the ConfigMap's data after ev, from its current data: the generation held
// and its cutoff; a loss (found now, or a cutoff in the generation that the ConfigMap
// does not hold yet) sets lostAt and previousGeneration, which otherwise stay.
func Data(current map[string]string, ev blacklist.GenerationEvent) map[string]string {
	next := map[string]string{
		authv1alpha1.StoreStateGenerationKey:         ev.Generation.ID,
		authv1alpha1.StoreStateLostAtKey:             current[authv1alpha1.StoreStateLostAtKey],
		authv1alpha1.StoreStatePreviousGenerationKey: current[authv1alpha1.StoreStatePreviousGenerationKey],
		authv1alpha1.StoreStateNotBeforeKey:          "",
	}
	if nb := ev.Generation.NotBefore; nb > 0 {
		next[authv1alpha1.StoreStateNotBeforeKey] = rfc3339(nb)
		if ev.Lost || next[authv1alpha1.StoreStateLostAtKey] == "" || current[authv1alpha1.StoreStateNotBeforeKey] != next[authv1alpha1.StoreStateNotBeforeKey] {
			// The cutoff is the second after the detection.
			next[authv1alpha1.StoreStateLostAtKey] = rfc3339(nb - 1)
			next[authv1alpha1.StoreStatePreviousGenerationKey] = ev.Generation.Previous
			if next[authv1alpha1.StoreStatePreviousGenerationKey] == "" {
				next[authv1alpha1.StoreStatePreviousGenerationKey] = ev.Previous
			}
		}
	}
	return next
}

func rfc3339(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }
