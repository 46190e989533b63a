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

// apply server-side applies, in order, the fields of objs that the operator owns, forcing
// ownership back from anyone who edited them by hand. Each is a typed object built from the
// spec: fields it leaves empty stay with whoever set them, and an apply that changes nothing
// writes nothing. An object of that name that is not this AuthService's is refused, never
// taken over, and stops the applies.
func (r *AuthServiceReconciler) apply(ctx context.Context, as *authv1alpha1.AuthService, objs ...client.Object) error {
	for _, obj := range objs {
		if err := r.refuseForeign(ctx, as, obj); err != nil {
			return err
		}
		if err := controllerutil.SetControllerReference(as, obj, r.Scheme); err != nil {
			return fmt.Errorf("setting owner of %s: %w", obj.GetName(), err)
		}
		applied, err := r.applyUnowned(ctx, obj)
		if err != nil {
			return err
		}
		// Recorded in the pass that created it, so that the next one has nothing to write.
		recordCreated(as, applied.GetKind(), applied)
	}
	return nil
}

// applyUnowned is apply without the owner reference, for cluster-scoped objects: a
// namespaced AuthService cannot own them, so a finalizer deletes them instead.
// It returns the object as the API server stored it.
func (r *AuthServiceReconciler) applyUnowned(ctx context.Context, obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme)
	if err != nil {
		return nil, fmt.Errorf("finding kind of %s: %w", obj.GetName(), err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	if err := keepAppliedFields(content); err != nil {
		return nil, fmt.Errorf("preparing %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	// The stored object's kind is the request's, also where the reply leaves it out.
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// appliedPaths are the only fields an apply sends, the allow-list of what the operator
// owns: identity, labels, annotations and owner, and the content fields of the kinds it
// applies. Everything else a typed object serializes (status, the server's metadata such
// as resourceVersion, uid or managedFields, a zero creationTimestamp) stays out, so an
// apply never claims a field the operator does not set.
var appliedPaths = [][]string{
	{"apiVersion"}, {"kind"},
	{"metadata", "name"}, {"metadata", "namespace"}, {"metadata", "labels"},
	{"metadata", "annotations"}, {"metadata", "ownerReferences"},
	// Workloads, Services, NetworkPolicies and PodDisruptionBudgets.
	{"spec"},
	// ConfigMaps and Secrets.
	{"data"}, {"binaryData"}, {"type"}, {"immutable"},
	// Roles and their bindings.
	{"rules"}, {"roleRef"}, {"subjects"},
	// ServiceAccounts.
	{"automountServiceAccountToken"}, {"imagePullSecrets"},
}

// keepAppliedFields reduces content to appliedPaths, then drops what the allowed spec still
// carries unset: the null creation timestamps and the status of the pod and volume claim
// templates.
func keepAppliedFields(content map[string]any) error {
	keepPaths(content, appliedPaths)
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

// keepPaths deletes every field of m that is neither on one of paths nor above one: a path
// keeps its whole subtree, a field above a path keeps only what the path goes on to.
func keepPaths(m map[string]any, paths [][]string) {
	for key, value := range m {
		var below [][]string
		whole := false
		for _, p := range paths {
			if p[0] != key {
				continue
			}
			if len(p) == 1 {
				whole = true
				break
			}
			below = append(below, p[1:])
		}
		switch nested, isMap := value.(map[string]any); {
		case whole:
		case len(below) > 0 && isMap:
			keepPaths(nested, below)
		default:
			delete(m, key)
		}
	}
}

// deleteOwned deletes each object named like one of objs when this AuthService controls it,
// as when a part is switched off (the PodDisruptionBudget, the managed Redis of the other
// kind).
func (r *AuthServiceReconciler) deleteOwned(ctx context.Context, as *authv1alpha1.AuthService, objs ...client.Object) error {
	for _, obj := range objs {
		key := client.ObjectKey{Namespace: as.Namespace, Name: obj.GetName()}
		if err := r.Client.Get(ctx, key, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s: %w", key.Name, err)
		}
		if !metav1.IsControlledBy(obj, as) {
			continue
		}
		if err := r.Client.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", key.Name, err)
		}
	}
	return nil
}
