// Package v1alpha1 contains the v1alpha1 API of the auth.hiringo.tech group: the AuthService resource.
// +kubebuilder:object:generate=true
// +groupName=auth.hiringo.tech
package v1alpha1
