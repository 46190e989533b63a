package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

const waitTimeout = 30 * time.Second

// createAuthService creates an AuthService after letting mutate adjust the default one.
func createAuthService(t *testing.T, ns, name string, mutate func(*authv1alpha1.AuthService)) *authv1alpha1.AuthService {
	t.Helper()
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mutate != nil {
		mutate(as)
	}
	if err := k8sClient.Create(context.Background(), as); err != nil {
		t.Fatalf("creating AuthService: %v", err)
	}
	return as
}

func get[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("getting %T %s: %v", obj, name, err)
	}
	return obj
}

// update re-reads obj, applies change and writes it, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	poll.Until(t, waitTimeout, fmt.Sprintf("updating %s", obj.GetName()), func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return k8sClient.Update(context.Background(), obj)
	})
}

func keySet(t *testing.T, ns, name string) (keydomain.Set, *corev1.Secret) {
	t.Helper()
	secret := get(t, ns, named(ns, name).SigningKeysSecretName(), &corev1.Secret{})
	s, err := keyfiles.Decode(secret.Data)
	if err != nil {
		t.Fatalf("decoding signing-key Secret: %v", err)
	}
	return s, secret
}

// waitCondition waits for a condition of the AuthService to reach a status (and reason, if given).
func waitCondition(t *testing.T, ns, name, conditionType string, status metav1.ConditionStatus, reason string) *authv1alpha1.AuthService {
	t.Helper()
	as := &authv1alpha1.AuthService{}
	poll.Until(t, waitTimeout, fmt.Sprintf("%s=%s %s", conditionType, status, reason), func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, as); err != nil {
			return err
		}
		c := condition(as, conditionType)
		if c.Status != status || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("%s is %s/%s: %s", conditionType, c.Status, c.Reason, c.Message)
		}
		return nil
	})
	return as
}

// markDeploymentAvailable writes the status the Deployment controller would once every
// replica of the current template is available; envtest runs no controllers.
func markDeploymentAvailable(t *testing.T, ns, name string) {
	t.Helper()
	d := &appsv1.Deployment{}
	poll.Until(t, waitTimeout, "marking Deployment "+name+" available", func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		}
		return k8sClient.Status().Update(context.Background(), d)
	})
}

// markStatefulSetAvailable does the same for the managed Redis StatefulSet NAME-redis, and
// waits for what follows from its pod defining the ACL users: the auth servers' Deployments
// that exist log in as theirs (so a test marks them available after that change). It needs
// the manager's reconciler.
func markStatefulSetAvailable(t *testing.T, ns, name string) {
	t.Helper()
	setStatefulSetAvailable(t, ns, name)
	as := strings.TrimSuffix(name, "-redis")
	poll.Until(t, waitTimeout, "the auth servers log in to Redis as their ACL user", func() error {
		for _, server := range []string{as + "-authserver", as + "-issuer"} {
			d := &appsv1.Deployment{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: server}, d); apierrors.IsNotFound(err) {
				continue
			} else if err != nil {
				return err
			}
			if user := envMap(d.Spec.Template.Spec.Containers[0])["AUTHSERVER_REDIS_USERNAME"]; user != "authserver" {
				return fmt.Errorf("%s logs in as %q", server, user)
			}
		}
		return nil
	})
}

// setStatefulSetAvailable writes the status of a StatefulSet with its one pod available
// and up to date, as its controller would.
func setStatefulSetAvailable(t *testing.T, ns, name string) {
	t.Helper()
	s := &appsv1.StatefulSet{}
	poll.Until(t, waitTimeout, "marking StatefulSet "+name+" available", func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return err
		}
		s.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: s.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1,
		}
		return k8sClient.Status().Update(context.Background(), s)
	})
}

// waitEvent waits for an event about the AuthService with the reason and a note containing
// every fragment, and returns its note.
func waitEvent(t *testing.T, ns, name, eventType, reason string, fragments ...string) string {
	t.Helper()
	var note string
	poll.Until(t, waitTimeout, "event "+reason, func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
	events:
		for _, e := range list.Items {
			if e.Regarding.Name != name || e.Reason != reason || e.Type != eventType {
				continue
			}
			seen = append(seen, e.Note)
			for _, f := range fragments {
				if !strings.Contains(e.Note, f) {
					continue events
				}
			}
			note = e.Note
			return nil
		}
		return fmt.Errorf("no %s %s event with %q among %q", eventType, reason, fragments, seen)
	})
	return note
}

// reconcileOnce runs one pass of r for the AuthService.
func reconcileOnce(t *testing.T, r *AuthServiceReconciler, ns, name string) reconcile.Result {
	t.Helper()
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if res.RequeueAfter <= 0 {
		t.Fatalf("RequeueAfter = %s, want a positive delay", res.RequeueAfter)
	}
	return res
}

func isNotFound(t *testing.T, ns, name string, obj client.Object) bool {
	t.Helper()
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("getting %s: %v", name, err)
	}
	return apierrors.IsNotFound(err)
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := k8sClient.Create(context.Background(), s); err != nil {
		t.Fatalf("creating Secret %s: %v", name, err)
	}
	return s
}

func typeName(obj client.Object) string { return fmt.Sprintf("%T", obj) }

// metaItems returns the items of a typed list as objects.
func metaItems(list client.ObjectList) ([]client.Object, error) {
	objs, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		if co, ok := o.(client.Object); ok {
			out = append(out, co)
		}
	}
	return out, nil
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func serverEnvOf(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	return envMap(get(t, ns, named(ns, name).ServerName(), &appsv1.Deployment{}).Spec.Template.Spec.Containers[0])
}

// namespaceVersions are the resourceVersions of every object the operator makes for the
// AuthServices of ns, and of the AuthServices: what a pass that writes nothing leaves as it
// found it.
func namespaceVersions(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, list := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &corev1.ServiceList{}, &corev1.ServiceAccountList{},
		&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &appsv1.DeploymentList{}, &appsv1.StatefulSetList{}, &networkingv1.NetworkPolicyList{},
		&policyv1.PodDisruptionBudgetList{}, &authv1alpha1.AuthServiceList{}, &rbacv1.ClusterRoleBindingList{}} {
		if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, err := metaItems(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			if _, cluster := list.(*rbacv1.ClusterRoleBindingList); cluster && o.GetLabels()[authv1alpha1.AuthServiceNamespaceLabel] != ns {
				continue
			}
			out[fmt.Sprintf("%T %s", o, o.GetName())] = o.GetResourceVersion()
		}
	}
	return out
}
