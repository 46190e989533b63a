package managedredis

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/redisconf"
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
		if statefulSetRolledOutWithACL(o.Redis) && o.Redis.Spec.ServiceName == as.RedisName() {
			return authServerLogin
		}
		return adminLogin
	}
	if deploymentRolledOutWithACL(o.RedisDeployment) {
		return authServerLogin
	}
	return adminLogin
}

// replicatedLogin is the auth servers' login to the replicated Redis and its Sentinels of as.
func replicatedLogin(as *authv1alpha1.AuthService, o Observed) Login {
	if o.Redis != nil && o.Redis.Spec.ServiceName == as.RedisHeadlessName() &&
		statefulSetRolledOutWithACL(o.Redis) && statefulSetRolledOutWithACL(o.Sentinels) {
		return authServerLogin
	}
	return adminLogin
}

// sentinelsAwaitACL reports whether the Sentinels, running a template without the ACL users,
// must wait for every Redis pod to define them: a Sentinel of the new template logs in to
// Redis as redisconf.SentinelUser, which a Redis pod of the old one refuses, and would take
// the primary for down.
func sentinelsAwaitACL(o Observed) bool {
	return o.Sentinels != nil && o.Sentinels.Spec.Template.Annotations[ACLAnnotation] == "" && !statefulSetRolledOutWithACL(o.Redis)
}

// statefulSetRolledOutWithACL reports whether every pod of s runs its current template and
// that template defines the ACL users.
func statefulSetRolledOutWithACL(s *appsv1.StatefulSet) bool {
	if s == nil || s.Spec.Template.Annotations[ACLAnnotation] == "" {
		return false
	}
	st, want := s.Status, ptr.Deref(s.Spec.Replicas, 1)
	return st.ObservedGeneration >= s.Generation && st.UpdateRevision == st.CurrentRevision &&
		st.Replicas == want && st.UpdatedReplicas == want && st.ReadyReplicas == want
}

// deploymentRolledOutWithACL is statefulSetRolledOutWithACL for a Deployment.
func deploymentRolledOutWithACL(d *appsv1.Deployment) bool {
	if d == nil || d.Spec.Template.Annotations[ACLAnnotation] == "" {
		return false
	}
	st, want := d.Status, ptr.Deref(d.Spec.Replicas, 1)
	return st.ObservedGeneration >= d.Generation && st.Replicas == want && st.UpdatedReplicas == want && st.ReadyReplicas == want
}
