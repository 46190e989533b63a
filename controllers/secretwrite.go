package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// secretMerge says which parts of a stored Secret the operator owns and so replaces with
// the desired ones; labels the operator sets are always its own.
type secretMerge struct {
	// ownedAnnotations are the annotation keys the operator writes: one that desired lacks
	// is removed. Other annotations are kept.
	ownedAnnotations []string
	// replaceData drops data keys desired lacks. Without it they are kept, so a key someone
	// added by hand survives.
	replaceData bool
}

// writeSecret is the operator's one way to write a Secret whose content must never be
// lost to a stale read (signing keys, a generated password). With current nil (none was
// read) it creates desired, never applies it: a Secret that appeared since the read makes
// the create fail instead of being replaced. Otherwise it updates current at the
// resourceVersion it was read at, only when anything the operator owns differs, so a
// second writer gets a conflict. A Secret that is not as's is never taken over: the error
// is a foreignObjectError. It returns the Secret as stored.
func (r *AuthServiceReconciler) writeSecret(ctx context.Context, as *authv1alpha1.AuthService, current, desired *corev1.Secret, merge secretMerge) (*corev1.Secret, error) {
	if err := controllerutil.SetControllerReference(as, desired, r.Scheme); err != nil {
		return nil, fmt.Errorf("setting owner of Secret %s: %w", desired.Name, err)
	}
	if current == nil {
		if err := r.Client.Create(ctx, desired, client.FieldOwner(fieldOwner)); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("creating Secret %s: %w", desired.Name, err)
			}
			// Not in the cache: a Secret the operator did not make, or one it made a
			// moment ago that the cache has not seen yet (retried shortly).
			if ferr := r.refuseForeign(ctx, as, desired); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("creating Secret %s: it appeared since the last read, retrying: %w", desired.Name, err)
		}
		recordCreated(as, "Secret", desired)
		return desired, nil
	}
	if why := foreignReason("Secret", current, as); why != "" {
		return nil, &foreignObjectError{kind: "Secret", name: desired.Name, why: why}
	}
	r.reportTampering(as, "Secret", current)
	updated := mergeSecret(current, desired, merge)
	if err := controllerutil.SetControllerReference(as, updated, r.Scheme); err != nil {
		return nil, fmt.Errorf("setting owner of Secret %s: %w", desired.Name, err)
	}
	if secretsEqual(current, updated) {
		return updated, nil
	}
	if err := r.Client.Update(ctx, updated, client.FieldOwner(fieldOwner)); err != nil {
		return nil, fmt.Errorf("updating Secret %s: %w", desired.Name, err)
	}
	return updated, nil
}

// mergeSecret is current with desired's labels, owned annotations and data in place; the
// resourceVersion stays current's, which guards the update. current is not changed.
func mergeSecret(current, desired *corev1.Secret, merge secretMerge) *corev1.Secret {
	updated := current.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, desired.Labels)
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	for _, k := range merge.ownedAnnotations {
		delete(updated.Annotations, k)
	}
	maps.Copy(updated.Annotations, desired.Annotations)
	if merge.replaceData || updated.Data == nil {
		updated.Data = map[string][]byte{}
	}
	maps.Copy(updated.Data, desired.Data)
	return updated
}

// secretsEqual reports whether two Secrets hold the same labels, annotations, data and
// number of owner references: what writeSecret may change.
func secretsEqual(a, b *corev1.Secret) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		len(a.OwnerReferences) == len(b.OwnerReferences) && maps.EqualFunc(a.Data, b.Data, bytes.Equal)
}
