package controllers

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/managedredis"
)

func haAuthService() *authv1alpha1.AuthService {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	withHA(as)
	return as
}

func TestHAConnection_AuthServersGoThroughTheSentinels(t *testing.T) {
	as := haAuthService()
	as.Spec.Redis.Managed.HighAvailability.MinReplicasAcked = ptr.To[int32](2)
	conn := managedConnection(as, managedredis.Desired(as, managedredis.Observed{}, "v", "img").Endpoint, "v")
	d := serverDeployment(as, conn, "img", 0)
	env := envMap(d.Spec.Template.Spec.Containers[0])
	for k, v := range map[string]string{
		"AUTHSERVER_REDIS_MODE":                   "sentinel",
		"AUTHSERVER_REDIS_ADDRS":                  "auth-redis-sentinel.prod.svc:26379",
		"AUTHSERVER_REDIS_MASTER_NAME":            "auth",
		"AUTHSERVER_REDIS_PASSWORD_FILE":          "/etc/authserver/redis/password",
		"AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE": "/etc/authserver/redis-sentinel/password",
		"AUTHSERVER_REDIS_MIN_REPLICAS_ACKED":     "2",
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	var mounted bool
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "redis-sentinel-password" && v.Secret != nil && v.Secret.SecretName == "auth-redis" && v.Secret.Items[0].Key == "password" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("volumes = %+v, want the managed Redis password mounted for the Sentinels", d.Spec.Template.Spec.Volumes)
	}
	one := as.DeepCopy()
	one.Spec.Redis.Managed.HighAvailability = nil
	conn = managedConnection(one, managedredis.Desired(one, managedredis.Observed{}, "v", "img").Endpoint, "v")
	single := envMap(serverDeployment(as, conn, "img", 0).Spec.Template.Spec.Containers[0])
	if single["AUTHSERVER_REDIS_ADDRS"] != "auth-redis.prod.svc:6379" || single["AUTHSERVER_REDIS_PASSWORD_FILE"] != "/etc/authserver/redis/password" {
		t.Errorf("single pod: env %v, want the Service of the one pod and the managed password", single)
	}
	for _, k := range []string{"AUTHSERVER_REDIS_MODE", "AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE", "AUTHSERVER_REDIS_MIN_REPLICAS_ACKED"} {
		if _, ok := single[k]; ok {
			t.Errorf("single pod: %s is set, which would roll existing auth servers", k)
		}
	}
}

func TestExternalRedisMode(t *testing.T) {
	for in, want := range map[authv1alpha1.RedisMode]string{"": "", "Auto": "", "Standalone": "standalone", "Sentinel": "sentinel", "Cluster": "cluster"} {
		if got := externalRedisMode(in); got != want {
			t.Errorf("externalRedisMode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplicatedRedisReadiness(t *testing.T) {
	as := haAuthService()
	set := func(available, gen, observed int64) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{Status: appsv1.StatefulSetStatus{AvailableReplicas: int32(available), ObservedGeneration: observed}}
		s.Generation = gen
		return s
	}
	for _, tc := range []struct {
		name            string
		redis, sentinel *appsv1.StatefulSet
		status          metav1.ConditionStatus
		reason          string
	}{
		{"all up", set(3, 1, 1), set(3, 1, 1), metav1.ConditionTrue, authv1alpha1.ReasonReady},
		{"one Redis and one Sentinel down", set(2, 1, 1), set(2, 1, 1), metav1.ConditionTrue, authv1alpha1.ReasonReady},
		{"no replica to acknowledge", set(1, 1, 1), set(3, 1, 1), metav1.ConditionFalse, authv1alpha1.ReasonUnavailable},
		{"no Sentinel majority", set(3, 1, 1), set(1, 1, 1), metav1.ConditionFalse, authv1alpha1.ReasonUnavailable},
		{"a change not yet observed", set(3, 2, 1), set(3, 1, 1), metav1.ConditionFalse, authv1alpha1.ReasonProgressing},
	} {
		c := replicatedRedisReadiness(as, tc.redis, tc.sentinel)
		if c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, "Sentinels") {
			t.Errorf("%s: %s %s %q, want %s %s", tc.name, c.Status, c.Reason, c.Message, tc.status, tc.reason)
		}
	}
}
