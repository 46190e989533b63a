package localkubelet

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// TestRunner_APodNameKeepsItsAddressAcrossItsPods replaces a pod with a DNS name, as a
// StatefulSet does, and checks on real processes that the name stays one address: a pod
// launched while no pod has the name gets that address for it, and the replacement
// answers there.
func TestRunner_APodNameKeepsItsAddressAcrossItsPods(t *testing.T) {
	ctx := context.Background()
	cl, err := client.New(testEnv, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := "runner-named"
	createObjects(t, cl, podNamespace(ns)...)
	r, _ := startRunner(t)
	// The pods go while this runner still runs (cleanups run last first), so that the
	// next test's runner finds none of them on the node.
	t.Cleanup(func() { deletePods(t, cl, ns) })

	named := func() *corev1.Pod {
		p := redisPod(ns)
		p.Spec.Hostname, p.Spec.Subdomain = "cache-0", "cache-headless"
		return p
	}
	first := named()
	createObjects(t, cl, first)
	addr := waitReadyPort(t, r, first.Name)

	if err := cl.Delete(ctx, first, client.GracePeriodSeconds(1)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the first pod deleted", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(first), &corev1.Pod{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})

	// Launched while no pod has the name, a pod that refers to it gets its address.
	follower := redisPod(ns)
	follower.Name = "follower"
	follower.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PRIMARY", Value: "cache-0.cache-headless." + ns + ".svc:6379"}}
	createObjects(t, cl, follower)
	waitReadyPort(t, r, follower.Name)
	if got := envOf(t, r, follower.Name, "PRIMARY"); got != addr {
		t.Errorf("PRIMARY launched between the pods named cache-0 = %q, want its address %s", got, addr)
	}

	createObjects(t, cl, named())
	if got := waitReadyPort(t, r, first.Name); got != addr {
		t.Fatalf("the replacing pod answers at %s, the name's address is %s", got, addr)
	}
	if reply, err := ping(addr); err != nil || reply != "+PONG" {
		t.Fatalf("PING at the name's address: %q %v", reply, err)
	}
}

// deletePods deletes every pod of namespace ns and waits until they are gone.
func deletePods(t *testing.T, cl client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := cl.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(1)); err != nil {
		t.Error(err)
		return
	}
	poll.Until(t, 30*time.Second, "the pods of "+ns+" deleted", func() error {
		var pods corev1.PodList
		if err := cl.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
}

// waitReadyPort waits until the runner's pod name is ready and returns the local address
// of its port 6379.
func waitReadyPort(t *testing.T, r *Runner, name string) string {
	t.Helper()
	var addr string
	poll.Until(t, 30*time.Second, name+" ready", func() error {
		for _, p := range r.Pods() {
			if p.Name == name && p.Ready {
				addr = p.Containers[0].Ports[6379]
				return nil
			}
		}
		return fmt.Errorf("%s not ready", name)
	})
	return addr
}

// envOf is the value of variable key in the first container of the runner's pod name.
func envOf(t *testing.T, r *Runner, name, key string) string {
	t.Helper()
	for _, p := range r.Pods() {
		if p.Name != name {
			continue
		}
		for _, e := range p.Containers[0].Env {
			if e.Name == key {
				return e.Value
			}
		}
	}
	t.Fatalf("pod %s has no %s", name, key)
	return ""
}
