package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// apply server-side applies the fields of obj that the operator owns, forcing ownership back
// from anyone who edited them by hand. obj is a typed object built from the spec: fields it
// leaves empty stay with whoever set them, and an apply that changes nothing writes nothing.
// An object of that name that is not this AuthService's is refused, never taken over.
func (r *AuthServiceReconciler) apply(ctx context.Context, as *authv1alpha1.AuthService, obj client.Object) error {
	if err := r.refuseForeign(ctx, as, obj); err != nil {
		return err
	}
	if err := controllerutil.SetControllerReference(as, obj, r.Scheme); err != nil {
		return fmt.Errorf("setting owner of %s: %w", obj.GetName(), err)
	}
	return r.applyUnowned(ctx, obj)
}

// applyUnowned is apply without the owner reference, for cluster-scoped objects: a
// namespaced AuthService cannot own them, so a finalizer deletes them instead.
func (r *AuthServiceReconciler) applyUnowned(ctx context.Context, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme)
	if err != nil {
		return fmt.Errorf("finding kind of %s: %w", obj.GetName(), err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	if err := dropUnsetFields(content); err != nil {
		return fmt.Errorf("preparing %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}

// dropUnsetFields removes what a typed object always serializes though nobody set it: the
// status and the null creation timestamps, so the apply claims only fields the operator sets.
func dropUnsetFields(content map[string]any) error {
	unstructured.RemoveNestedField(content, "status")
	unstructured.RemoveNestedField(content, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(content, "spec", "template", "metadata", "creationTimestamp")
	templates, found, err := unstructured.NestedSlice(content, "spec", "volumeClaimTemplates")
	if err != nil || !found {
		return err
	}
	for _, t := range templates {
		if m, ok := t.(map[string]any); ok {
			unstructured.RemoveNestedField(m, "status")
			unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		}
	}
	return unstructured.SetNestedSlice(content, templates, "spec", "volumeClaimTemplates")
}

// deleteOwned deletes the object named like obj when this AuthService controls it, as when
// a part is switched off (the PodDisruptionBudget, the managed Redis of the other kind).
func (r *AuthServiceReconciler) deleteOwned(ctx context.Context, as *authv1alpha1.AuthService, obj client.Object) error {
	key := client.ObjectKey{Namespace: as.Namespace, Name: obj.GetName()}
	if err := r.Client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s: %w", key.Name, err)
	}
	if !metav1.IsControlledBy(obj, as) {
		return nil
	}
	if err := r.Client.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", key.Name, err)
	}
	return nil
}
