package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/managedredis"
)

// redisConnection is how the auth server reaches its Redis, as the Redis phase found it.
type redisConnection struct {
	addresses  []string
	masterName string
	username   string
	db         int32
	// password names the Secret key holding the password; nil when there is none.
	password *authv1alpha1.SecretKeyReference
	// passwordChecksum changes whenever the password's Secret does.
	passwordChecksum string
	tls              *authv1alpha1.RedisTLSSpec
	// caChecksum changes whenever the TLS CA bundle's Secret does: the auth server reads the
	// bundle at start, so a new one must roll the pods.
	caChecksum string
	// mode is --redis-mode (standalone, sentinel, cluster); empty leaves the server's auto.
	mode string
	// sentinelUsername and sentinelPassword are the Sentinels' own credentials; the
	// password names a Secret key, nil when there is none.
	sentinelUsername string
	sentinelPassword *authv1alpha1.SecretKeyReference
	// sentinelPasswordChecksum changes whenever the Sentinel password's Secret does.
	sentinelPasswordChecksum string
	// minReplicasAcked is --redis-min-replicas-acked; 0 leaves the server's default (off).
	minReplicasAcked int32
	// sessionCapacity is --session-capacity: the managed Redis's sessionCapacity; 0 for an
	// external Redis, whose size the operator does not know.
	sessionCapacity int32
}

// redisFound is what the Redis phase found, besides how the auth server reaches Redis
// (scope.redis).
type redisFound struct {
	// unusable is the first Secret reference of spec.redis.external that cannot be used, and
	// unusableField its place in the spec.
	unusable      *authv1alpha1.SecretKeyReference
	unusableField string
	// badPassword is why the managed Redis Secret's password cannot go into redis.conf.
	badPassword error
	// replacing is the StatefulSet, as read, that is replaced for a new governing Service.
	replacing *appsv1.StatefulSet
	// claimKept says the spec asks for a volume claim template the StatefulSet cannot take.
	claimKept bool
	// workload is the single Redis's StatefulSet or Deployment, or the replicated Redis's
	// StatefulSet, as read back after the apply; sentinels is the Sentinels' StatefulSet,
	// nil while it does not exist.
	workload  client.Object
	sentinels *appsv1.StatefulSet
	// unobserved is why the object named unobservedName could not be read back.
	unobserved     error
	unobservedName string
}

// reconcileRedis runs the managed Redis or wires the external one.
func (r *AuthServiceReconciler) reconcileRedis(ctx context.Context, s *scope) (reconcile.Result, error) {
	if keyPrefixProblem(s.as) != "" {
		// Nothing is wired with it: the auth servers keep the prefix they run with.
		return reconcile.Result{}, nil
	}
	if ext := s.as.Spec.Redis.External; ext != nil {
		if err := r.removeManagedRedis(ctx, s.as); err != nil {
			return reconcile.Result{}, err
		}
		// The Secrets it names are watched: a change to one brings the next pass.
		return reconcile.Result{}, r.wireExternalRedis(ctx, s, ext)
	}
	if s.as.Spec.Redis.Managed == nil {
		// The CRD's validation rules this out; an object stored before it existed may not.
		return reconcile.Result{}, errors.New("spec.redis sets neither managed nor external: set one of them")
	}
	return reconcile.Result{}, r.reconcileManagedRedis(ctx, s)
}

func (r *AuthServiceReconciler) wireExternalRedis(ctx context.Context, s *scope, ext *authv1alpha1.ExternalRedisSpec) error {
	as := s.as
	conn := redisConnection{masterName: ext.MasterName, username: ext.Username, db: ext.DB, tls: ext.TLS, password: ext.PasswordSecretRef,
		mode: externalRedisMode(ext.Mode), sentinelUsername: ext.SentinelUsername, sentinelPassword: ext.SentinelPasswordSecretRef}
	for _, a := range ext.Addresses {
		conn.addresses = append(conn.addresses, string(a))
	}
	// Each Secret the spec names, and the pod-template checksum that follows its versions.
	type secretUse struct {
		field    string
		ref      *authv1alpha1.SecretKeyReference
		checksum *string
	}
	refs := []secretUse{
		{"spec.redis.external.passwordSecretRef", ext.PasswordSecretRef, &conn.passwordChecksum},
		{"spec.redis.external.sentinelPasswordSecretRef", ext.SentinelPasswordSecretRef, &conn.sentinelPasswordChecksum},
	}
	if ext.TLS != nil && ext.TLS.Enabled {
		refs = append(refs, secretUse{"spec.redis.external.tls.caSecretRef", ext.TLS.CASecretRef, &conn.caChecksum})
	}
	for _, ref := range refs {
		if ref.ref == nil {
			continue
		}
		secret, err := r.readUserSecret(ctx, as, ref.ref.Name, ref.ref.Key)
		switch {
		case err != nil:
			return fmt.Errorf("reading Secret %s named by %s: %w", ref.ref.Name, ref.field, err)
		case secret == nil:
			s.redisFound.unusable, s.redisFound.unusableField = ref.ref, ref.field
			return nil
		}
		*ref.checksum = secretVersion(secret)
	}
	s.redis = &conn
	return nil
}

// externalRedisMode is the --redis-mode of spec.redis.external.mode; Auto (the server's
// default) sets nothing, so running pods do not roll.
func externalRedisMode(m authv1alpha1.RedisMode) string {
	if m == "" || m == authv1alpha1.RedisModeAuto {
		return ""
	}
	return strings.ToLower(string(m))
}

// reconcileManagedRedis writes the managed Redis as managedredis plans it, after its Secret.
func (r *AuthServiceReconciler) reconcileManagedRedis(ctx context.Context, s *scope) error {
	as := s.as
	secret, err := r.ensureRedisSecret(ctx, s)
	if err != nil || secret == nil {
		// Without a Secret the password is unusable and was reported; Redis and the auth
		// server keep running as they are.
		return err
	}
	if managedredis.Replicated(as) && s.image == "" {
		return nil
	}
	observed, err := managedredis.Read(ctx, r.Client, as)
	if err != nil {
		return err
	}
	// The Secret's version, never a digest of its content: that would let anyone allowed to
	// read the workloads, but not Secrets, test password guesses offline.
	version := secretVersion(secret)
	plan := managedredis.Desired(as, observed, version, s.image)
	if err := r.deleteOwned(ctx, as, plan.Remove...); err != nil {
		return err
	}
	if old := plan.Replace; old != nil {
		s.redisFound.replacing = old
		if !old.DeletionTimestamp.IsZero() {
			return nil
		}
		if err := r.Client.Delete(ctx, old.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replacing StatefulSet %s: %w", old.Name, err)
		}
		return nil
	}
	if err := r.apply(ctx, as, plan.Apply...); err != nil {
		return err
	}
	conn := managedConnection(as, plan.Endpoint, version)
	s.redis = &conn
	if err := r.deleteOwned(ctx, as, plan.RemoveAfter...); err != nil {
		return err
	}
	// Read back, the workloads tell whether Redis is up: for a replicated Redis, a primary,
	// the replicas that acknowledge logouts and a Sentinel majority.
	s.redisFound.claimKept = plan.ClaimKept
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(plan.Workload), plan.Workload); err != nil {
		s.redisFound.unobserved, s.redisFound.unobservedName = err, plan.Workload.GetName()
		return nil
	}
	s.redisFound.workload = plan.Workload
	if plan.Sentinels != nil {
		switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(plan.Sentinels), plan.Sentinels); {
		case err == nil:
			s.redisFound.sentinels = plan.Sentinels
		case !apierrors.IsNotFound(err):
			s.redisFound.unobserved, s.redisFound.unobservedName = err, plan.Sentinels.Name
		}
	}
	return nil
}

// managedConnection is how the auth servers reach the managed Redis at e, as e's login with
// its password from the managed Redis Secret (version), at Redis and at the Sentinels.
func managedConnection(as *authv1alpha1.AuthService, e managedredis.Endpoint, version string) redisConnection {
	ref := &authv1alpha1.SecretKeyReference{Name: as.RedisName(), Key: e.Login.PasswordKey}
	conn := redisConnection{addresses: e.Addresses, masterName: e.MasterName, username: e.Login.Username, password: ref, passwordChecksum: version,
		minReplicasAcked: e.MinReplicasAcked, sessionCapacity: *managedredis.Spec(as).SessionCapacity}
	if e.MasterName != "" {
		conn.mode, conn.sentinelUsername, conn.sentinelPassword = "sentinel", e.Login.Username, ref
	}
	return conn
}

// ensureRedisSecret returns the managed Redis Secret as written, generating each password
// once. Existing passwords are kept (also when someone changes one by hand: redis.conf
// follows it and the pods roll); only a missing or empty one is replaced. A password or key
// prefix that cannot go into the configuration safely is reported and nothing is written:
// the Secret is nil.
func (r *AuthServiceReconciler) ensureRedisSecret(ctx context.Context, s *scope) (*corev1.Secret, error) {
	as := s.as
	current, err := r.ownSecret(ctx, as, as.RedisName())
	if err != nil {
		return nil, err
	}
	if current != nil {
		if why := foreignReason("Secret", current, as); why != "" {
			return nil, &foreignObjectError{kind: "Secret", name: current.Name, why: why}
		}
	}
	creds, err := managedredis.CredentialsOf(current).Filled()
	if err != nil {
		return nil, err
	}
	desired, err := managedredis.ConfigSecret(as, creds, redisKeyPrefix(as))
	if err != nil {
		s.redisFound.badPassword = err
		return nil, nil
	}
	return r.writeSecret(ctx, as, current, desired, secretMerge{})
}

// removeManagedRedis deletes the managed Redis after a switch to an external one. Its
// Secret is emptied, not deleted: the operator may delete no Secret at all (its RBAC has
// no delete on Secrets, which RBAC could not narrow to its own), and the garbage collector
// deletes the empty one with the AuthService.
func (r *AuthServiceReconciler) removeManagedRedis(ctx context.Context, as *authv1alpha1.AuthService) error {
	if err := r.deleteOwned(ctx, as, managedredis.Objects(as)...); err != nil {
		return err
	}
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: as.RedisName()}, secret); err == nil &&
		metav1.IsControlledBy(secret, as) && len(secret.Data) > 0 {
		secret.Data = nil
		if err := r.Client.Update(ctx, secret, client.FieldOwner(fieldOwner)); err != nil {
			return fmt.Errorf("emptying Secret %s: %w", secret.Name, err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Secret %s: %w", as.RedisName(), err)
	}
	return nil
}

// secretVersion identifies one version of a user's Secret by its UID and resourceVersion,
// never by its content: a digest of a password the user chose would let anyone allowed to
// read Deployments, but not Secrets, test guesses offline. Any write to the Secret rolls
// the auth server, a password change included.
func secretVersion(s *corev1.Secret) string {
	return checksum([]byte(string(s.UID) + "/" + s.ResourceVersion))
}

// checksum is the hex SHA-256 of b.
func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
