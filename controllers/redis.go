package controllers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

const (
	// externalSecretRetry is how soon a missing external Redis password Secret is looked for again.
	externalSecretRetry = 30 * time.Second
	// externalSecretResync is how often an external Redis password is re-read for changes.
	externalSecretResync = 5 * time.Minute
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
		if err := r.wireExternalRedis(ctx, s, ext); err != nil {
			return reconcile.Result{}, err
		}
		if ext.PasswordSecretRef == nil && ext.SentinelPasswordSecretRef == nil && (ext.TLS == nil || ext.TLS.CASecretRef == nil) {
			return reconcile.Result{}, nil
		}
		// The user's Secrets are not watched (only labelled objects are), so look again soon
		// while one is unusable, and now and then for a changed password or CA bundle.
		if s.redis == nil {
			return reconcile.Result{RequeueAfter: externalSecretRetry}, nil
		}
		return reconcile.Result{RequeueAfter: externalSecretResync}, nil
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

func (r *AuthServiceReconciler) reconcileManagedRedis(ctx context.Context, s *scope) error {
	as := s.as
	managed := withDefaults(&as.Spec).Redis.Managed
	secret, err := r.ensureRedisSecret(ctx, s)
	if err != nil {
		return err
	}
	if secret == nil {
		// The password is unusable and was reported; Redis and the auth server keep running
		// as they are.
		return nil
	}
	// The Secret's version, never a digest of its content: that would let anyone allowed to
	// read the workloads, but not Secrets, test password guesses offline.
	version := secretVersion(secret)
	persistent := *managed.Persistence.Enabled
	if replicatedRedis(as) {
		return r.reconcileReplicatedRedis(ctx, s, version)
	}
	if err := r.removeReplicatedRedis(ctx, as); err != nil {
		return err
	}
	template := redisPodTemplate(as, version)

	var workload client.Object
	if persistent {
		if err := r.deleteOwned(ctx, as, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}); err != nil {
			return err
		}
		sts := redisStatefulSet(as, template)
		if replacing, err := r.replaceForNewGoverningService(ctx, s, sts); err != nil || replacing {
			return err
		}
		existing, err := r.storedStatefulSet(ctx, sts)
		if err != nil {
			return err
		}
		sts, s.redisFound.claimKept = keepVolumeClaimTemplate(existing, sts)
		workload = sts
	} else {
		if err := r.deleteOwned(ctx, as, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}); err != nil {
			return err
		}
		workload = redisDeployment(as, template)
	}
	for _, obj := range []client.Object{workload, redisService(as), redisNetworkPolicy(as)} {
		if err := r.apply(ctx, as, obj); err != nil {
			return err
		}
	}
	s.redis = &redisConnection{
		addresses:        []string{redisServiceAddress(as)},
		password:         &authv1alpha1.SecretKeyReference{Name: as.RedisName(), Key: RedisPasswordKey},
		passwordChecksum: version,
	}
	r.observe(ctx, s, workload)
	return nil
}

// replicatedRedis reports whether the managed Redis runs replicated with Sentinels.
func replicatedRedis(as *authv1alpha1.AuthService) bool {
	managed := withDefaults(&as.Spec).Redis.Managed
	return managed.HighAvailability != nil && *managed.Persistence.Enabled
}

// storedStatefulSet reads the StatefulSet named like desired; nil when there is none.
func (r *AuthServiceReconciler) storedStatefulSet(ctx context.Context, desired *appsv1.StatefulSet) (*appsv1.StatefulSet, error) {
	existing := &appsv1.StatefulSet{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading StatefulSet %s: %w", desired.Name, err)
	}
	return existing, nil
}

// keepVolumeClaimTemplate returns desired with the existing StatefulSet's volume claim
// template, which the API server does not let change, and whether the spec asks for
// another one. existing is nil when there is none; desired is left as it is.
func keepVolumeClaimTemplate(existing, desired *appsv1.StatefulSet) (*appsv1.StatefulSet, bool) {
	if existing == nil || len(existing.Spec.VolumeClaimTemplates) != 1 {
		return desired, false
	}
	have, want := existing.Spec.VolumeClaimTemplates[0].Spec, desired.Spec.VolumeClaimTemplates[0].Spec
	sameSize := have.Resources.Requests.Storage().Cmp(*want.Resources.Requests.Storage()) == 0
	sameClass := want.StorageClassName == nil || ptr.Deref(have.StorageClassName, "") == *want.StorageClassName
	if sameSize && sameClass {
		return desired, false
	}
	kept := desired.DeepCopy()
	kept.Spec.VolumeClaimTemplates[0].Spec.Resources = *have.Resources.DeepCopy()
	kept.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = have.StorageClassName
	return kept, true
}

// ensureRedisSecret returns the managed Redis Secret as written, generating the password
// once. An existing password is kept (also when someone changes it by hand: redis.conf
// follows it and the pods roll); only a missing or empty one is replaced. A password that
// cannot go into redis.conf safely is reported and nothing is written: the Secret is nil.
func (r *AuthServiceReconciler) ensureRedisSecret(ctx context.Context, s *scope) (*corev1.Secret, error) {
	as := s.as
	current := &corev1.Secret{}
	key := client.ObjectKey{Namespace: as.Namespace, Name: as.RedisName()}
	exists, err := r.getOwn(ctx, key, current)
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	if exists {
		if why := foreignReason("Secret", current, as); why != "" {
			return nil, &foreignObjectError{kind: "Secret", name: key.Name, why: why}
		}
	}
	password := string(current.Data[RedisPasswordKey])
	if password == "" {
		var err error
		if password, err = newRedisPassword(); err != nil {
			return nil, err
		}
	}
	conf, err := redisconf.Render(password, redisconf.MaxMemory(withDefaults(&as.Spec).Redis.Managed.Resources.Limits.Memory()))
	if err != nil {
		s.redisFound.badPassword = err
		return nil, nil
	}
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: as.Namespace, Labels: objects.Labels(as, "redis", componentRedis)},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			RedisPasswordKey: []byte(password),
			RedisConfigKey:   []byte(conf),
		},
	}
	stored := current
	if !exists {
		stored = nil
	}
	return r.writeSecret(ctx, as, stored, desired, secretMerge{})
}

// newRedisPassword makes a 256-bit random password in hex, safe to write into redis.conf.
func newRedisPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating Redis password: %w", err)
	}
	return hex.EncodeToString(b), nil
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

// redisPodTemplate is the managed Redis pod; confVersion, the version of the Secret that
// holds redis.conf, rolls it when the configuration changes.
func redisPodTemplate(as *authv1alpha1.AuthService, confVersion string) corev1.PodTemplateSpec {
	managed := withDefaults(&as.Spec).Redis.Managed
	fsync := string(managed.AppendFsync)
	image := managed.Image
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      objects.Labels(as, "redis", componentRedis),
			Annotations: map[string]string{RedisConfigChecksumAnnotation: confVersion},
		},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext:              objects.RestrictedPodSecurityContext(redisUID),
			Containers: []corev1.Container{{
				Name:    "redis",
				Image:   image,
				Command: []string{"redis-server", redisConfDir + "/redis.conf", "--dir", redisDataDir, "--appendonly", "yes", "--appendfsync", fsync, "--port", fmt.Sprint(redisPort)},
				Ports:   []corev1.ContainerPort{{Name: "redis", ContainerPort: redisPort, Protocol: corev1.ProtocolTCP}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: redisConfDir, ReadOnly: true},
					{Name: "data", MountPath: redisDataDir},
				},
				Resources:       managed.Resources,
				SecurityContext: objects.RestrictedContainerSecurityContext(),
				LivenessProbe:   redisLiveness("redis"),
				ReadinessProbe:  redisReadiness(),
			}},
			Volumes: []corev1.Volume{{
				Name: "config",
				VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: as.RedisName(),
					Items: []corev1.KeyToPath{
						{Key: RedisConfigKey, Path: "redis.conf"},
						{Key: RedisPasswordKey, Path: "password"},
					},
					DefaultMode: ptr.To[int32](0o440),
				}},
			}},
		},
	}
}

func redisStatefulSet(as *authv1alpha1.AuthService, template corev1.PodTemplateSpec) *appsv1.StatefulSet {
	managed := withDefaults(&as.Spec).Redis.Managed
	size := *managed.Persistence.Size
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, "redis", componentRedis)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: as.RedisName(),
			Selector:    &metav1.LabelSelector{MatchLabels: objects.Selector(as, "redis")},
			Template:    template,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: objects.Labels(as, "redis", componentRedis)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: managed.Persistence.StorageClassName,
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
				},
			}},
		},
	}
}

func redisDeployment(as *authv1alpha1.AuthService, template corev1.PodTemplateSpec) *appsv1.Deployment {
	template.Spec.Volumes = append(template.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, "redis", componentRedis)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, "redis")},
			Template: template,
			// One Redis at a time: two would each hold half of the blacklist.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		},
	}
}

func redisService(as *authv1alpha1.AuthService) *corev1.Service {
	return objects.ClusterService(as, as.RedisName(), "redis", componentRedis, "redis", redisPort)
}

// redisNetworkPolicy lets only this AuthService's verifier and issuer pods reach its Redis.
func redisNetworkPolicy(as *authv1alpha1.AuthService) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(redisPort)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: as.RedisName(), Namespace: as.Namespace, Labels: objects.Labels(as, "redis", componentRedis)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: objects.Selector(as, "redis")},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppVerifier)}},
					{PodSelector: &metav1.LabelSelector{MatchLabels: objects.Selector(as, objects.AppIssuer)}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port}},
			}},
		},
	}
}

// removeManagedRedis deletes the managed Redis after a switch to an external one. Its
// Secret is emptied, not deleted: the operator may delete no Secret at all (its RBAC has
// no delete on Secrets, which RBAC could not narrow to its own), and the garbage collector
// deletes the empty one with the AuthService.
func (r *AuthServiceReconciler) removeManagedRedis(ctx context.Context, as *authv1alpha1.AuthService) error {
	name := metav1.ObjectMeta{Name: as.RedisName()}
	for _, obj := range []client.Object{
		&appsv1.StatefulSet{ObjectMeta: name}, &appsv1.Deployment{ObjectMeta: name},
		&corev1.Service{ObjectMeta: name}, &networkingv1.NetworkPolicy{ObjectMeta: name},
	} {
		if err := r.deleteOwned(ctx, as, obj); err != nil {
			return err
		}
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
	return r.removeReplicatedRedis(ctx, as)
}

// observe reads a workload back after the apply, with the status its controller wrote, and
// reports whether it could.
func (r *AuthServiceReconciler) observe(ctx context.Context, s *scope, workload client.Object) bool {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(workload), workload); err != nil {
		s.redisFound.unobserved, s.redisFound.unobservedName = err, workload.GetName()
		return false
	}
	s.redisFound.workload = workload
	return true
}
