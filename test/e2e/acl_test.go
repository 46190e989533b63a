package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// waitServersOnACLUser waits until the verifier's and the issuer's Deployments log in to the
// managed Redis as its ACL user authserver and run no pod of an older template: once every
// Redis (and Sentinel) pod defines that user, the operator rolls them to it.
func waitServersOnACLUser(t *testing.T, key types.NamespacedName) {
	t.Helper()
	as := named(key)
	poll.Until(t, 2*time.Minute, "the auth servers log in to Redis as authserver, rolled out", func() error {
		for _, name := range []string{as.ServerName(), as.IssuerName()} {
			var d appsv1.Deployment
			if err := kube.Get(context.Background(), types.NamespacedName{Namespace: key.Namespace, Name: name}, &d); err != nil {
				return err
			}
			user := ""
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "AUTHSERVER_REDIS_USERNAME" {
					user = e.Value
				}
			}
			want, st := ptr.Deref(d.Spec.Replicas, 1), d.Status
			if user != "authserver" || st.ObservedGeneration < d.Generation || st.Replicas != want || st.UpdatedReplicas != want || st.ReadyReplicas != want {
				return fmt.Errorf("%s logs in as %q, %d/%d/%d of %d pods updated/ready", name, user, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, want)
			}
		}
		return nil
	})
}

// assertAuthServersUserIsBounded logs in to the Redis pod at redisAddr and to the Sentinel at
// sentinelAddr ("" for none) as the auth servers' user, with the password the operator
// generated: the store's commands under the AuthService's key prefix pass, anything else
// (another prefix, flushing, reconfiguring Redis or the Sentinel) is refused.
func assertAuthServersUserIsBounded(t *testing.T, key types.NamespacedName, secret *corev1.Secret, redisAddr, sentinelAddr string) {
	t.Helper()
	ctx := context.Background()
	password, prefix := string(secret.Data["authserver-password"]), getAuthService(t, key).Status.RedisKeyPrefix
	if password == "" || prefix == "" {
		t.Fatalf("no auth servers' password (%d bytes) or key prefix %q", len(password), prefix)
	}
	c := redis.NewClient(&redis.Options{Addr: redisAddr, Username: "authserver", Password: password, DisableIdentity: true})
	defer c.Close()
	if err := c.Exists(ctx, prefix+"e2e-probe").Err(); err != nil {
		t.Errorf("a read under the prefix as authserver: %v", err)
	}
	for _, cmd := range [][]any{{"get", "elsewhere"}, {"flushall"}, {"config", "get", "requirepass"}, {"replicaof", "no", "one"}, {"acl", "list"}} {
		if err := c.Do(ctx, cmd...).Err(); !redis.HasErrorPrefix(err, "NOPERM") {
			t.Errorf("%v at Redis as authserver: %v, want NOPERM", cmd, err)
		}
	}
	if sentinelAddr == "" {
		return
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr, Username: "authserver", Password: password, DisableIdentity: true})
	defer sc.Close()
	if _, err := sc.GetMasterAddrByName(ctx, key.Name).Result(); err != nil {
		t.Errorf("the primary's address from a Sentinel as authserver: %v", err)
	}
	for _, cmd := range [][]any{{"sentinel", "remove", key.Name}, {"sentinel", "set", key.Name, "quorum", "1"}, {"sentinel", "failover", key.Name}} {
		if err := sc.Process(ctx, redis.NewCmd(ctx, cmd...)); !redis.HasErrorPrefix(err, "NOPERM") {
			t.Errorf("%v at a Sentinel as authserver: %v, want NOPERM", cmd, err)
		}
	}
}
