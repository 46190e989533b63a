package managedredis

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/serverenv"
)

// Login is a user of the managed Redis and the key of its password in the managed Redis
// Secret; an empty Username is Redis's default user.
type Login struct {
	Username, PasswordKey string
}

// The auth servers' logins: their ACL user, bounded to their key prefix and to the commands
// they send, once every Redis (and Sentinel) pod defines it; until then, during an upgrade
// from a release without ACL users, the administrator, as before.
var (
	authServerLogin = Login{Username: redisconf.AuthServerUser, PasswordKey: AuthServerPasswordKey}
	adminLogin      = Login{PasswordKey: PasswordKey}
)

// singleLogin is the auth servers' login to the one Redis pod of as.
func singleLogin(as *authv1alpha1.AuthService, o Observed) Login {
	if *Spec(as).Persistence.Enabled {
		if o.Redis != nil && o.Redis.Spec.ServiceName == as.RedisName() && (statefulSetRolledOutWithACL(o.Redis) || serversOnACL(o) && hasACL(o.Redis.Spec.Template)) {
			return authServerLogin
		}
		return adminLogin
	}
	if d := o.RedisDeployment; d != nil && (deploymentRolledOutWithACL(d) || serversOnACL(o) && hasACL(d.Spec.Template)) {
		return authServerLogin
	}
	return adminLogin
}

// replicatedLogin is the auth servers' login to the replicated Redis and its Sentinels of as.
func replicatedLogin(as *authv1alpha1.AuthService, o Observed) Login {
	if o.Redis == nil || o.Sentinels == nil || o.Redis.Spec.ServiceName != as.RedisHeadlessName() {
		return adminLogin
	}
	if statefulSetRolledOutWithACL(o.Redis) && statefulSetRolledOutWithACL(o.Sentinels) ||
		serversOnACL(o) && hasACL(o.Redis.Spec.Template) && hasACL(o.Sentinels.Spec.Template) {
		return authServerLogin
	}
	return adminLogin
}

// serversOnACL reports whether an auth server already logs in as its ACL user: once the
// pods defined it, a pod that restarts or is not ready does not take it back, and the auth
// servers stay on it rather than roll twice.
func serversOnACL(o Observed) bool {
	for _, d := range o.Servers {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == serverenv.RedisUsername && e.Value == redisconf.AuthServerUser {
					return true
				}
			}
		}
	}
	return false
}

// hasACL reports whether a pod template defines the ACL users.
func hasACL(t corev1.PodTemplateSpec) bool { return t.Annotations[ACLAnnotation] != "" }

// sentinelsAwaitACL reports whether the Sentinels, running a template without the ACL users,
// must wait for every Redis pod to define them: a Sentinel of the new template logs in to
// Redis as redisconf.SentinelUser, which a Redis pod of the old one refuses, and would take
// the primary for down.
func sentinelsAwaitACL(o Observed) bool {
	return o.Sentinels != nil && !hasACL(o.Sentinels.Spec.Template) && !statefulSetRolledOutWithACL(o.Redis)
}

// statefulSetRolledOutWithACL reports whether every pod of s was created from its current
// template (its controller says the rollout finished) and that template defines the ACL
// users. Readiness does not count: a pod that restarts keeps its template.
func statefulSetRolledOutWithACL(s *appsv1.StatefulSet) bool {
	if s == nil || !hasACL(s.Spec.Template) {
		return false
	}
	st := s.Status
	return st.ObservedGeneration >= s.Generation && st.UpdateRevision == st.CurrentRevision && st.UpdatedReplicas >= 1
}

// deploymentRolledOutWithACL is statefulSetRolledOutWithACL for a Deployment: its controller
// reports the new ReplicaSet available (Progressing, NewReplicaSetAvailable), which holds
// until the template changes again.
func deploymentRolledOutWithACL(d *appsv1.Deployment) bool {
	if d == nil || !hasACL(d.Spec.Template) || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionTrue && c.Reason == "NewReplicaSetAvailable" {
			return true
		}
	}
	return false
}
