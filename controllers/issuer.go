package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/serverenv"
)

// reconcileIssuer runs the issuer, the one workload that mounts the private keys: its
// ServiceAccount, the Role that lets it read (only) its key Secret, the ClusterRoleBinding
// that lets it review its callers' ServiceAccount tokens, its Deployment, its Service and,
// as spec.server.podDisruptionBudget says for both roles, its PodDisruptionBudget.
func (r *AuthServiceReconciler) reconcileIssuer(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	if s.tlsUsable() {
		as.Status.IssuerURL = issuerURL(as)
		as.Status.Issuer = tokenIssuer(as)
	}
	if err := r.apply(ctx, as, issuerServiceAccount(as), issuerRole(as), issuerRoleBinding(as), userLogoutsConfigMap(as)); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.applyTokenReviewBinding(ctx, as, issuerClusterRoleBinding(as)); err != nil {
		return reconcile.Result{}, err
	}
	recheck, err := r.reconcileStoreState(ctx, s)
	if err != nil {
		return reconcile.Result{}, err
	}
	result := reconcile.Result{RequeueAfter: recheck}
	if s.redis == nil || !s.tlsUsable() || s.image == "" {
		return result, nil
	}
	deployment := issuerDeployment(as, *s.redis, s.image)
	if err := r.apply(ctx, as, deployment, issuerService(as)); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.reconcilePodDisruptionBudget(ctx, as, as.IssuerName(), objects.AppIssuer, componentIssuer); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(deployment), deployment); err != nil {
		return reconcile.Result{}, fmt.Errorf("reading Deployment %s: %w", deployment.Name, err)
	}
	s.issuer = deployment
	return result, nil
}

// applyTokenReviewBinding applies desired, a ClusterRoleBinding of this AuthService to the
// TokenReview ClusterRole (the issuer's or the verifier's), unless one of that name belongs
// to another AuthService (namespace "a-b" with name "c" and namespace "a" with name "b-c"
// join to the same name): taking it over would cut that AuthService's server off.
func (r *AuthServiceReconciler) applyTokenReviewBinding(ctx context.Context, as *authv1alpha1.AuthService, desired *rbacv1.ClusterRoleBinding) error {
	existing := &rbacv1.ClusterRoleBinding{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), existing)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading ClusterRoleBinding %s: %w", desired.Name, err)
	case existing.Labels[authv1alpha1.AuthServiceNamespaceLabel] != as.Namespace || existing.Labels[authv1alpha1.AuthServiceLabel] != as.Name:
		return fmt.Errorf("ClusterRoleBinding %s belongs to AuthService %s/%s, not to this one: rename this AuthService so the issuer's binding gets a name of its own",
			desired.Name, existing.Labels[authv1alpha1.AuthServiceNamespaceLabel], existing.Labels[authv1alpha1.AuthServiceLabel])
	}
	_, err = r.applyUnowned(ctx, desired)
	return err
}

// issuerEnv is the issuer's configuration: what both roles share, the callers it serves
// and the Secret it watches through the API, so that a revoked key reaches Redis at once
// rather than after the kubelet's sync. Callers' ServiceAccount tokens must be minted for
// the token issuer as their audience.
func issuerEnv(as *authv1alpha1.AuthService, redis redisConnection) []corev1.EnvVar {
	clients := make([]string, 0, len(as.Spec.Issuance.Clients))
	for _, c := range as.Spec.Issuance.Clients {
		clients = append(clients, c.Namespace+"/"+c.ServiceAccountName)
	}
	env := authserverEnv(as, redis, serverenv.RoleIssuer)
	d := withDefaults(&as.Spec)
	for _, v := range []corev1.EnvVar{
		{Name: serverenv.SessionMaxLifetime, Value: d.Tokens.SessionMaxLifetime.Duration.String()},
		{Name: serverenv.RefreshGracePeriod, Value: d.Issuance.RefreshGracePeriod.Duration.String()},
		{Name: serverenv.RefreshesPerMinute, Value: strconv.Itoa(int(*d.Issuance.RefreshesPerMinute))},
		{Name: serverenv.IssuanceClients, Value: strings.Join(clients, ",")},
		{Name: serverenv.ClientAudience, Value: tokenIssuer(as)},
		{Name: serverenv.SingleSession, Value: strconv.FormatBool(as.Spec.Issuance.SingleSession)},
		{Name: serverenv.KeysSecret, Value: as.SigningKeysSecretName()},
		{Name: serverenv.UserLogoutsConfigMap, Value: as.UserLogoutsConfigMapName()},
		{Name: serverenv.Namespace, Value: as.Namespace},
		{Name: serverenv.StoreStateConfigMap, Value: as.StoreStateConfigMapName()},
	} {
		if v.Value != "" {
			env = append(env, v)
		}
	}
	return env
}

// issuerDeployment builds the issuer Deployment: it mounts the signing-key Secret and runs
// as its own ServiceAccount, whose token it needs to watch that Secret and to create
// TokenReviews. Like the verifier's, its pod template does not change with a rotation.
func issuerDeployment(as *authv1alpha1.AuthService, redis redisConnection, image string) *appsv1.Deployment {
	keys := corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  as.SigningKeysSecretName(),
		DefaultMode: ptr.To[int32](0o440),
	}}
	return authserverDeployment(as, authserverWorkload{
		name: as.IssuerName(), app: objects.AppIssuer, component: componentIssuer,
		replicas: as.Spec.Issuance.Replicas, keys: keys, env: issuerEnv(as, redis),
		serviceAccount: as.IssuerName(),
	}, redis, image)
}

func issuerService(as *authv1alpha1.AuthService) *corev1.Service {
	scheme, port := servicePort(as, issuerServicePort)
	return objects.ClusterService(as, as.IssuerName(), objects.AppIssuer, componentIssuer, scheme, port)
}

func issuerServiceAccount(as *authv1alpha1.AuthService) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: as.IssuerName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppIssuer, componentIssuer)},
		AutomountServiceAccountToken: ptr.To(true),
	}
}

// issuerRole lets the issuer read its own signing-key Secret and no other, follow and
// mark applied the requests of its user-logouts ConfigMap, and record the blacklist
// store's state in its own store-state ConfigMap.
func issuerRole(as *authv1alpha1.AuthService) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: as.IssuerName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppIssuer, componentIssuer)},
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{""},
			Resources:     []string{"secrets"},
			ResourceNames: []string{as.SigningKeysSecretName()},
			Verbs:         []string{"get", "list", "watch"},
		}, {
			APIGroups:     []string{""},
			Resources:     []string{"configmaps"},
			ResourceNames: []string{as.UserLogoutsConfigMapName()},
			Verbs:         []string{"get", "list", "watch", "patch"},
		}, {
			APIGroups:     []string{""},
			Resources:     []string{"configmaps"},
			ResourceNames: []string{as.StoreStateConfigMapName()},
			Verbs:         []string{"get", "update", "patch"},
		}},
	}
}

// userLogoutsConfigMap is created empty: its entries are written by kubectl authsvc
// logout-user and the issuer, and the apply claims none of them.
func userLogoutsConfigMap(as *authv1alpha1.AuthService) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: as.UserLogoutsConfigMapName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppIssuer, componentUserLogouts),
	}}
}

func issuerRoleBinding(as *authv1alpha1.AuthService) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: as.IssuerName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppIssuer, componentIssuer)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: as.IssuerName()},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: as.IssuerName(), Namespace: as.Namespace}},
	}
}

// issuerClusterRoleBinding binds the issuer's ServiceAccount to the installed ClusterRole
// that may create TokenReviews. Labels, not an owner reference, name its AuthService.
func issuerClusterRoleBinding(as *authv1alpha1.AuthService) *rbacv1.ClusterRoleBinding {
	return tokenReviewBinding(as, as.IssuerClusterRoleBindingName(), as.IssuerName(), objects.AppIssuer, componentIssuer)
}

// verifierClusterRoleBinding binds the verifier's ServiceAccount to the same ClusterRole,
// while spec.introspection.clients is set: the verifier reviews its callers' tokens.
func verifierClusterRoleBinding(as *authv1alpha1.AuthService) *rbacv1.ClusterRoleBinding {
	return tokenReviewBinding(as, as.VerifierClusterRoleBindingName(), as.ServerName(), objects.AppVerifier, componentServer)
}

func tokenReviewBinding(as *authv1alpha1.AuthService, name, serviceAccount, app, component string) *rbacv1.ClusterRoleBinding {
	l := objects.Labels(as, app, component)
	l[authv1alpha1.AuthServiceNamespaceLabel] = as.Namespace
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authv1alpha1.IssuerClusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: as.Namespace}},
	}
}

// reconcileVerifierIdentity gives the verifier a ServiceAccount that may create
// TokenReviews while spec.introspection.clients is set, and takes the binding away when
// it is not (the ServiceAccount, unused then, stays until the AuthService goes).
func (r *AuthServiceReconciler) reconcileVerifierIdentity(ctx context.Context, as *authv1alpha1.AuthService) error {
	if len(as.Spec.Introspection.Clients) == 0 {
		// The cache holds every binding the operator made: only one found there is
		// read again from the API and deleted.
		name := as.VerifierClusterRoleBindingName()
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &rbacv1.ClusterRoleBinding{}); apierrors.IsNotFound(err) {
			return nil
		}
		return r.deleteClusterRoleBinding(ctx, as, name)
	}
	sa := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: as.ServerName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppVerifier, componentServer)},
		AutomountServiceAccountToken: ptr.To(true),
	}
	if err := r.apply(ctx, as, sa); err != nil {
		return err
	}
	return r.applyTokenReviewBinding(ctx, as, verifierClusterRoleBinding(as))
}
