package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// ownedLists are the kinds of namespaced object an AuthService's objects are among, with
// the workloads' ReplicaSets, Pods and EndpointSlices that the controllers make from them.
func ownedLists() []client.ObjectList {
	return []client.ObjectList{
		&appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &appsv1.StatefulSetList{}, &corev1.PodList{},
		&corev1.ServiceList{}, &discoveryv1.EndpointSliceList{}, &corev1.SecretList{}, &corev1.ConfigMapList{},
		&corev1.ServiceAccountList{}, &policyv1.PodDisruptionBudgetList{}, &networkingv1.NetworkPolicyList{},
		&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.PersistentVolumeClaimList{},
	}
}

// labelledObjects lists, as "Kind/name", the objects of the namespace that carry the
// AuthService's label.
func labelledObjects(ctx context.Context, key types.NamespacedName) ([]string, error) {
	var out []string
	for _, list := range ownedLists() {
		if err := kube.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingLabels{authv1alpha1.AuthServiceLabel: key.Name}); err != nil {
			return nil, err
		}
		kind := strings.TrimSuffix(fmt.Sprintf("%T", list), "List")
		kind = kind[strings.LastIndex(kind, ".")+1:]
		items, err := metaItems(list)
		if err != nil {
			return nil, err
		}
		for _, name := range items {
			out = append(out, kind+"/"+name)
		}
	}
	return out, nil
}

func metaItems(list client.ObjectList) ([]string, error) {
	var names []string
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *appsv1.ReplicaSetList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *appsv1.StatefulSetList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.PodList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.ServiceList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *discoveryv1.EndpointSliceList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.SecretList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.ConfigMapList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.ServiceAccountList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *policyv1.PodDisruptionBudgetList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *networkingv1.NetworkPolicyList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *rbacv1.RoleList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *rbacv1.RoleBindingList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.PersistentVolumeClaimList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	default:
		return nil, fmt.Errorf("unlisted kind %T", list)
	}
	return names, nil
}

// serverPodsOf lists the auth-server Pod objects of an AuthService that are not being
// deleted.
func serverPodsOf(ctx context.Context, key types.NamespacedName) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := kube.List(ctx, &pods, client.InNamespace(key.Namespace),
		client.MatchingLabels{"app.kubernetes.io/instance": key.Name, "app.kubernetes.io/name": "authserver"}); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestE2E_DisruptionBudgetAndDeletion checks two controllers of kube-controller-manager on
// the operator's objects: the disruption controller's status of the auth server's
// PodDisruptionBudget, which the API server's eviction honours, and the garbage collector,
// which removes everything the AuthService owns when it is deleted, while its Redis
// PersistentVolumeClaim stays (docs/operator.md: the StatefulSet's claims are not owned by
// the AuthService).
func TestE2E_DisruptionBudgetAndDeletion(t *testing.T) {
	t.Parallel()
	key := createReady(t, "owned", func(as *authv1alpha1.AuthService) {
		as.Spec.Server.PodDisruptionBudget = authv1alpha1.PodDisruptionBudgetSpec{Enabled: true, MaxUnavailable: ptr.To(intstr.FromInt32(1))}
	})
	ctx := context.Background()
	pdbKey := types.NamespacedName{Namespace: key.Namespace, Name: named(key).ServerName()}

	t.Run("the PodDisruptionBudget allows one disruption and refuses a second eviction", func(t *testing.T) {
		poll.Until(t, time.Minute, "PodDisruptionBudget status", func() error {
			var pdb policyv1.PodDisruptionBudget
			if err := kube.Get(ctx, pdbKey, &pdb); err != nil {
				return err
			}
			st := pdb.Status
			if st.ObservedGeneration != pdb.Generation || st.ExpectedPods != 2 || st.CurrentHealthy != 2 || st.DesiredHealthy != 1 || st.DisruptionsAllowed != 1 {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		pods, err := serverPodsOf(ctx, key)
		if err != nil || len(pods) != 2 {
			t.Fatalf("want 2 auth-server pods, got %d (%v)", len(pods), err)
		}
		evict := func(p corev1.Pod) error {
			return kube.SubResource("eviction").Create(ctx, &p, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
		}
		if err := evict(pods[0]); err != nil {
			t.Fatalf("the first eviction, within the budget, was refused: %v", err)
		}
		err = evict(pods[1])
		if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "disruption budget") {
			t.Fatalf("the second eviction, beyond the budget, answered %v; want 429 naming the disruption budget", err)
		}
		// The Deployment replaces the evicted pod and the budget recovers.
		poll.Until(t, 2*time.Minute, "budget recovered", func() error {
			var pdb policyv1.PodDisruptionBudget
			if err := kube.Get(ctx, pdbKey, &pdb); err != nil {
				return err
			}
			if pdb.Status.CurrentHealthy != 2 || pdb.Status.DisruptionsAllowed != 1 {
				return fmt.Errorf("status %+v", pdb.Status)
			}
			return nil
		})
	})

	t.Run("deleting the AuthService removes what it owns and keeps the Redis claim", func(t *testing.T) {
		before, err := labelledObjects(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		claim := "PersistentVolumeClaim/data-" + named(key).RedisName() + "-0"
		for _, want := range []string{"Deployment/" + named(key).ServerName(), "StatefulSet/" + named(key).RedisName(), "PodDisruptionBudget/" + named(key).ServerName(), claim} {
			if !contains(before, want) {
				t.Fatalf("%s is not among the AuthService's objects %v", want, before)
			}
		}
		if err := kube.Delete(ctx, &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 2*time.Minute, "everything but the claim collected", func() error {
			left, err := labelledObjects(ctx, key)
			if err != nil {
				return err
			}
			if len(left) != 1 || left[0] != claim {
				return fmt.Errorf("left: %v", left)
			}
			return nil
		})
		var pvc corev1.PersistentVolumeClaim
		if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: strings.TrimPrefix(claim, "PersistentVolumeClaim/")}, &pvc); err != nil || pvc.DeletionTimestamp != nil || pvc.Status.Phase != corev1.ClaimBound {
			t.Fatalf("the Redis claim did not stay bound: %+v %v", pvc.Status, err)
		}
		poll.Until(t, 2*time.Minute, "no pod left in the namespace", func() error {
			var pods corev1.PodList
			if err := kube.List(ctx, &pods, client.InNamespace(key.Namespace)); err != nil {
				return err
			}
			if len(pods.Items) > 0 {
				return fmt.Errorf("pod %s still %s", pods.Items[0].Name, pods.Items[0].Status.Phase)
			}
			return nil
		})
	})
}

// TestE2E_RedisPasswordChangeRollsTheServersWithoutAFailedRequest changes the password of
// an external Redis while a client keeps verifying tokens through the Service. The new
// password rolls the auth-server pods (the Deployment controller, maxSurge 1 and
// maxUnavailable 0); no request may fail. The Redis accepts the old and the new password
// during the change (two passwords for the default user, as ACL SETUSER allows), as a
// password change without downtime needs.
func TestE2E_RedisPasswordChangeRollsTheServersWithoutAFailedRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const oldPassword, newPassword = "e2e-old-password-0123456789", "e2e-new-password-9876543210"
	name := "password-roll"
	ns := "e2e-" + name
	ensureNamespace(t, ns)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "external-redis", Namespace: ns}, Data: map[string][]byte{"password": []byte(oldPassword)}}
	if err := kube.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// The "external" Redis is one the platform runs itself: a pod of the suite's Redis image
	// behind a Service, which the auth servers reach by its cluster DNS name.
	redisHost, redisAddr := runExternalRedis(t, ns, "external-redis", oldPassword)
	key := createReady(t, name, func(as *authv1alpha1.AuthService) {
		as.Spec.Redis = authv1alpha1.RedisSpec{External: &authv1alpha1.ExternalRedisSpec{
			Addresses:         []authv1alpha1.RedisAddress{authv1alpha1.RedisAddress(redisHost)},
			PasswordSecretRef: &authv1alpha1.SecretKeyReference{Name: secret.Name, Key: "password"},
		}}
	})
	url := serverURL(t, key)
	m := issuerMinter(t, key)
	before, err := serverPodsOf(ctx, key)
	if err != nil || len(before) != 2 {
		t.Fatalf("want 2 auth-server pods, got %d (%v)", len(before), err)
	}

	vc := newVerifyClient(url, m, 10*time.Minute)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		vc.run(stop)
	}()
	stopClient := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopClient()
	poll.UntilTrue(t, 30*time.Second, "verify load running", func() bool {
		vc.mu.Lock()
		defer vc.mu.Unlock()
		return vc.calls >= 20
	})

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, Password: oldPassword})
	defer rdb.Close()
	if err := rdb.Do(ctx, "ACL", "SETUSER", "default", ">"+newPassword).Err(); err != nil {
		t.Fatalf("adding the new password: %v", err)
	}
	secret.Data["password"] = []byte(newPassword)
	if err := kube.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// The operator watches the Secrets an AuthService names: the new password rolls the
	// verifier at once, with nothing else touched.

	oldNames := map[string]bool{before[0].Name: true, before[1].Name: true}
	var minAvailable int32 = 2
	poll.Until(t, 3*time.Minute, "roll complete", func() error {
		var d appsv1.Deployment
		if err := kube.Get(ctx, types.NamespacedName{Namespace: ns, Name: named(key).ServerName()}, &d); err != nil {
			return err
		}
		minAvailable = min(minAvailable, d.Status.AvailableReplicas)
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != 2 || st.AvailableReplicas != 2 || st.Replicas != 2 {
			return fmt.Errorf("deployment status %+v", st)
		}
		var pods corev1.PodList
		if err := kube.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": "authserver"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if oldNames[p.Name] {
				return fmt.Errorf("old pod %s still there", p.Name)
			}
		}
		return nil
	})
	// A few more seconds of load on the new pods, then the verdict.
	time.Sleep(2 * time.Second)
	stopClient()
	if minAvailable < 2 {
		t.Errorf("the Deployment had %d available replicas during the roll; maxUnavailable 0 keeps 2", minAvailable)
	}
	var sets appsv1.ReplicaSetList
	if err := kube.List(ctx, &sets, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": "authserver"}); err != nil {
		t.Fatal(err)
	}
	if len(sets.Items) < 2 {
		t.Errorf("want the old and the new ReplicaSet of the roll, got %d", len(sets.Items))
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if len(vc.rejected) > 0 || len(vc.mintFails) > 0 {
		t.Fatalf("%d of %d verify requests failed during the roll (first: %v), %d mint failures %v", len(vc.rejected), vc.calls, first(vc.rejected), len(vc.mintFails), first(vc.mintFails))
	}
	t.Logf("%d verify requests through the Service during the roll, none failed", vc.calls)
}
