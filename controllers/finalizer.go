package controllers

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// ensureFinalizer adds ClusterResourcesFinalizer before the pass creates anything
// cluster-scoped, so that no deletion can leave such an object behind.
func (r *AuthServiceReconciler) ensureFinalizer(ctx context.Context, as *authv1alpha1.AuthService) error {
	if controllerutil.ContainsFinalizer(as, ClusterResourcesFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(as.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(as, ClusterResourcesFinalizer)
	if err := r.Client.Patch(ctx, as, patch); err != nil {
		return fmt.Errorf("adding finalizer %s: %w", ClusterResourcesFinalizer, err)
	}
	return nil
}

// finalize deletes the AuthService's cluster-scoped objects, then releases it to the
// garbage collector, which removes the namespaced ones through their owner references.
func (r *AuthServiceReconciler) finalize(ctx context.Context, as *authv1alpha1.AuthService) error {
	if !controllerutil.ContainsFinalizer(as, ClusterResourcesFinalizer) {
		return nil
	}
	for _, name := range []string{as.IssuerClusterRoleBindingName(), as.VerifierClusterRoleBindingName()} {
		if err := r.deleteClusterRoleBinding(ctx, as, name); err != nil {
			return err
		}
	}
	patch := client.MergeFromWithOptions(as.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(as, ClusterResourcesFinalizer)
	if err := r.Client.Patch(ctx, as, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s: %w", ClusterResourcesFinalizer, err)
	}
	return nil
}

// deleteClusterRoleBinding deletes the ClusterRoleBinding name (the issuer's or the
// verifier's) when its labels say it belongs to this AuthService. It reads the binding from
// the API, not the cache, so one created moments ago is not missed, and deletes exactly the
// version it checked.
func (r *AuthServiceReconciler) deleteClusterRoleBinding(ctx context.Context, as *authv1alpha1.AuthService, name string) error {
	crb := &rbacv1.ClusterRoleBinding{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, crb); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading ClusterRoleBinding %s: %w", name, err)
	}
	l := crb.Labels
	if l[objects.ManagedByLabel] != objects.ManagedByValue || l[authv1alpha1.AuthServiceLabel] != as.Name || l[authv1alpha1.AuthServiceNamespaceLabel] != as.Namespace {
		return nil
	}
	if err := r.Client.Delete(ctx, crb, client.Preconditions{UID: &crb.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ClusterRoleBinding %s: %w", name, err)
	}
	return nil
}

// authServiceOfClusterObject maps a cluster-scoped object the operator made to the
// AuthService its labels name, so that a deleted or edited binding is put back at once.
func authServiceOfClusterObject(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	ns, name := l[authv1alpha1.AuthServiceNamespaceLabel], l[authv1alpha1.AuthServiceLabel]
	if l[objects.ManagedByLabel] != objects.ManagedByValue || ns == "" || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}
