package install

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// assertReachesOnlyItsClusterRoleBindings checks, as the operator's account user, what the
// install's ValidatingAdmissionPolicy leaves of its cluster-wide ClusterRoleBinding verbs: it
// may not delete or change a binding it did not make, nor make one that binds another role,
// another kind of subject, or a name outside its own. (That it may make, and delete, its own is
// what assertReconcilesSample shows: the manager runs as the same account.) Its RBAC alone
// allows every one of these requests.
func assertReachesOnlyItsClusterRoleBindings(t *testing.T, user envtest.User) {
	t.Helper()
	authn, err := apiServer.AddUser(user, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", user.Name, err)
	}
	operator, err := client.New(authn.Config(), client.Options{Scheme: k8sClient.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	suffix := strings.NewReplacer(":", "-").Replace(strings.TrimPrefix(user.Name, "system:serviceaccount:"))
	managed := map[string]string{
		"app.kubernetes.io/managed-by":         "auth-operator",
		authv1alpha1.AuthServiceLabel:          "auth",
		authv1alpha1.AuthServiceNamespaceLabel: "team-a",
	}
	binding := func(name, role string, labels map[string]string, subject rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}
	}
	teamSA := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "auth-issuer", Namespace: "team-a"}

	// Bindings the cluster's admins made: one of another role that carries the operator's
	// label, one of the issuer role that does not.
	foreign := []*rbacv1.ClusterRoleBinding{
		binding("labelled-view-"+suffix, "view", managed, teamSA),
		binding("auth-operator-issuer-by-hand-"+suffix, authv1alpha1.IssuerClusterRoleName, nil, teamSA),
	}
	for _, crb := range foreign {
		if err := k8sClient.Create(ctx, crb); err != nil {
			t.Fatalf("create %s as the admin: %v", crb.Name, err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), crb) })
	}

	// The policy reaches the API server's admission a moment after it is applied: a dry run,
	// which admission sees as the real request, waits for it without deleting anything.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := operator.Delete(ctx, foreign[0].DeepCopy(), client.DryRunAll)
		return apierrors.IsForbidden(err), nil
	})
	if err != nil {
		t.Fatalf("the operator's account may still delete %s, a binding it did not make: is the install's ValidatingAdmissionPolicy applied and matching %s?", foreign[0].Name, user.Name)
	}

	wantForbidden := func(what string, err error, says string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: got %v, want Forbidden saying %q", what, err, says)
		}
	}
	for _, crb := range foreign {
		wantForbidden("delete "+crb.Name, operator.Delete(ctx, crb.DeepCopy()), "may change or delete only the ClusterRoleBindings it made")
		changed := crb.DeepCopy()
		changed.Subjects = append(changed.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "intruder", Namespace: "team-a"})
		wantForbidden("patch "+crb.Name, operator.Patch(ctx, changed, client.MergeFrom(crb)), "may change or delete only the ClusterRoleBindings it made")
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(crb), &rbacv1.ClusterRoleBinding{}); err != nil {
			t.Errorf("%s after the operator's attempts: %v", crb.Name, err)
		}
	}

	for _, c := range []struct {
		what string
		crb  *rbacv1.ClusterRoleBinding
	}{
		{"a binding to a user", binding("auth-operator-issuer-user-"+suffix, authv1alpha1.IssuerClusterRoleName, managed,
			rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"})},
		{"a binding to a ServiceAccount of another namespace", binding("auth-operator-issuer-ns-"+suffix, authv1alpha1.IssuerClusterRoleName, managed,
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: "kube-system"})},
		{"a binding named outside the operator's names", binding("tokenreviews-"+suffix, authv1alpha1.IssuerClusterRoleName, managed, teamSA)},
		{"an unlabelled binding", binding("auth-operator-issuer-unlabelled-"+suffix, authv1alpha1.IssuerClusterRoleName, nil, teamSA)},
	} {
		wantForbidden(fmt.Sprintf("create %s", c.what), operator.Create(ctx, c.crb, client.DryRunAll), "may only bind ClusterRole "+authv1alpha1.IssuerClusterRoleName)
	}
	// What the operator makes passes.
	own := binding("auth-operator-issuer-team-a-auth-"+suffix, authv1alpha1.IssuerClusterRoleName, managed, teamSA)
	if err := operator.Create(ctx, own, client.DryRunAll); err != nil {
		t.Errorf("create a binding as the operator makes it: %v", err)
	}
}
