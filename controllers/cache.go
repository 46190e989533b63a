package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// CacheOptions limits the manager's cache to the objects the operator creates: the Secrets,
// ConfigMaps, Services, workloads, NetworkPolicies, PodDisruptionBudgets, ServiceAccounts
// Roles and role bindings labelled app.kubernetes.io/managed-by=auth-operator. Every other
// object of those kinds in the cluster is neither listed, watched nor held in memory, but
// for the metadata of Secrets, which SetupWithManager watches in a cache of their own.
func CacheOptions() cache.Options {
	managed := k8slabels.SelectorFromSet(k8slabels.Set{objects.ManagedByLabel: objects.ManagedByValue})
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range []client.Object{
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.Service{},
		&appsv1.Deployment{}, &appsv1.StatefulSet{},
		&networkingv1.NetworkPolicy{}, &policyv1.PodDisruptionBudget{},
		&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRoleBinding{},
	} {
		byObject[obj] = cache.ByObject{Label: managed}
	}
	return cache.Options{ByObject: byObject}
}

// secretIdentity keeps of a Secret's metadata, as the cache of the Secrets AuthServices
// name receives it, only its name, namespace, UID and resourceVersion.
func secretIdentity(in any) (any, error) {
	if m, ok := in.(*metav1.PartialObjectMetadata); ok {
		m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	}
	return in, nil
}
