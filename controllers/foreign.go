package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// foreignObjectError says an object the operator would create already exists and is not
// this AuthService's. The operator never takes such an object over: a force-apply would
// claim its fields, and the owner reference would have the garbage collector delete it
// with the AuthService.
type foreignObjectError struct {
	kind, name string
	why        string
}

func (e *foreignObjectError) Error() string {
	return fmt.Sprintf("%s %s already exists and is not this AuthService's (%s): the operator will not take it over; rename or delete it, or give the AuthService another name",
		e.kind, e.name, e.why)
}

// isForeign reports whether err refuses a foreign object.
func isForeign(err error) bool {
	var f *foreignObjectError
	return errors.As(err, &f)
}

// foreignReason says why existing, of kind, is not as's to manage, or "" when it is:
// controlled by as, created by the operator for as (its UID is recorded in the status:
// labels or owner stripped by hand are tampering, which the write repairs), or labelled as
// made by the operator for as with no controller (a Secret restored from a backup, whose
// owner reference pointed at the AuthService's old UID). An object controlled by as has
// its UID recorded here.
func foreignReason(kind string, existing client.Object, as *authv1alpha1.AuthService) string {
	owner := metav1.GetControllerOf(existing)
	switch {
	case owner != nil && owner.UID == as.UID:
		recordCreated(as, kind, existing)
		return ""
	case createdByOperator(as, kind, existing):
		return ""
	case owner != nil:
		return fmt.Sprintf("controlled by %s %s", owner.Kind, owner.Name)
	case existing.GetLabels()[objects.ManagedByLabel] != objects.ManagedByValue:
		return fmt.Sprintf("no %s=%s label", objects.ManagedByLabel, objects.ManagedByValue)
	case existing.GetLabels()[authv1alpha1.AuthServiceLabel] != as.Name:
		return fmt.Sprintf("its %s label names another AuthService", authv1alpha1.AuthServiceLabel)
	default:
		return ""
	}
}

// refuseForeign returns a foreignObjectError when an object named like obj exists and is
// not as's. The cache holds only the operator's labelled objects, so an object missing
// from it is looked up in the API: once when the operator creates it, and on each pass
// while a foreign one is in the way.
func (r *AuthServiceReconciler) refuseForeign(ctx context.Context, as *authv1alpha1.AuthService, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme)
	if err != nil {
		return fmt.Errorf("finding kind of %s: %w", obj.GetName(), err)
	}
	// A fresh object to read into: decoding into obj itself would keep fields that the
	// existing object lacks, the owner reference included.
	fresh, err := r.Scheme.New(gvk)
	if err != nil {
		return fmt.Errorf("making a %s: %w", gvk.Kind, err)
	}
	existing, ok := fresh.(client.Object)
	if !ok {
		return fmt.Errorf("%s is not an object", gvk.Kind)
	}
	key := client.ObjectKey{Namespace: as.Namespace, Name: obj.GetName()}
	err = r.Client.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, existing)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading %s %s: %w", gvk.Kind, key.Name, err)
	}
	if why := foreignReason(gvk.Kind, existing, as); why != "" {
		return &foreignObjectError{kind: gvk.Kind, name: key.Name, why: why}
	}
	r.reportTampering(as, gvk.Kind, existing)
	return nil
}

// reportTampering says in an event that obj, the operator's own, lost its labels or owner
// reference, which the write under way restores.
func (r *AuthServiceReconciler) reportTampering(as *authv1alpha1.AuthService, kind string, obj client.Object) {
	if tampered(obj, as) {
		// The object is the event's related one: events of one AuthService that differ in
		// it alone are kept apart, not folded into one series.
		r.Recorder.Eventf(as, obj, corev1.EventTypeWarning, authv1alpha1.EventObjectTampered, "Repair",
			"%s %s, which the operator created, lost its labels or owner reference by hand: restored", kind, obj.GetName())
	}
}

// ownSecret reads the Secret name of as's namespace, which the operator writes: from the
// cache, which holds the operator's labelled objects only, else from the API, where one of
// the operator's whose labels were stripped still is. It is nil when there is none.
func (r *AuthServiceReconciler) ownSecret(ctx context.Context, as *authv1alpha1.AuthService, name string) (*corev1.Secret, error) {
	secret, key := &corev1.Secret{}, client.ObjectKey{Namespace: as.Namespace, Name: name}
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, secret)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	return secret, nil
}

// createdByOperator reports whether obj, of kind, is the very object the operator created
// for as: its UID is the recorded one.
func createdByOperator(as *authv1alpha1.AuthService, kind string, obj client.Object) bool {
	for _, c := range as.Status.CreatedObjects {
		if c.Kind == kind && c.Name == obj.GetName() {
			return c.UID != "" && c.UID == string(obj.GetUID())
		}
	}
	return false
}

// recordCreated records obj's UID in as's status as an object the operator made.
func recordCreated(as *authv1alpha1.AuthService, kind string, obj client.Object) {
	if obj.GetUID() == "" {
		return
	}
	for i, c := range as.Status.CreatedObjects {
		if c.Kind == kind && c.Name == obj.GetName() {
			as.Status.CreatedObjects[i].UID = string(obj.GetUID())
			return
		}
	}
	as.Status.CreatedObjects = append(as.Status.CreatedObjects, authv1alpha1.CreatedObject{Kind: kind, Name: obj.GetName(), UID: string(obj.GetUID())})
}

// tampered reports whether obj, which the operator created for as, lost its labels or its
// owner reference: the write repairs it, and the caller says so in an event.
func tampered(obj client.Object, as *authv1alpha1.AuthService) bool {
	return !metav1.IsControlledBy(obj, as) || obj.GetLabels()[objects.ManagedByLabel] != objects.ManagedByValue || obj.GetLabels()[authv1alpha1.AuthServiceLabel] != as.Name
}
