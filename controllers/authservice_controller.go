package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

const (
	// conflictRetry is how soon a pass that lost a write race to a newer version comes back.
	conflictRetry = time.Second
	// workloadRetry is how soon a pass whose Redis or auth-server phase failed comes back,
	// unless a key rotation is due earlier.
	workloadRetry = 30 * time.Second
	// foreignRetry is how soon a pass that refused a foreign object looks again: such an
	// object carries no operator label, so no watch reports its removal.
	foreignRetry = time.Minute
)

// AuthServiceReconciler reconciles AuthService objects.
type AuthServiceReconciler struct {
	// Client reads from the manager's cache (objects labelled managed-by=auth-operator only)
	// and writes to the API server.
	Client client.Client
	// APIReader reads uncached objects: Secrets the user names in the spec.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// Clock is the time source of the key lifecycle; tests inject a fake one.
	Clock clock.PassiveClock
	// DefaultServerImage is the auth-server image used when the spec names none.
	DefaultServerImage string
	// MinKeyPublishTime is how long a next key is published before it may sign; zero means
	// keylifecycle.DefaultMinPublishTime.
	MinKeyPublishTime time.Duration
	// GenerateKey makes signing keys; nil means keyfiles.GenerateKey.
	GenerateKey keylifecycle.Generator
	// RequireSecretUseLabel makes the Secrets that spec.redis.external names usable only when
	// they carry the label use.auth.hiringo.tech/<AuthService name>=true (docs/operator.md,
	// trust model).
	RequireSecretUseLabel bool
}

// scope is what the phases of one pass share: the AuthService and what each phase found,
// the facts that status.go derives every condition from. A phase records objects, flags and
// errors here; it never picks a condition's status, reason or message.
type scope struct {
	as *authv1alpha1.AuthService
	// now is the time the pass judges keys, certificates and the store state at.
	now time.Time
	// image is the auth-server image of both roles and of the Redis pods' topology step; ""
	// when neither the spec nor the operator names one.
	image string
	// requireSecretUseLabel is the reconciler's setting, which a Secret's use depends on.
	requireSecretUseLabel bool
	// failed holds the error that ended a phase, by the condition the phase covers.
	failed map[string]error
	// redis is how the auth server reaches Redis, once the Redis phase has worked it out.
	redis *redisConnection
	keys  keysFound
	tls   tlsFound
	// redisFound is what the Redis phase found besides the connection.
	redisFound redisFound
	// server and issuer are the verifier's and the issuer's Deployments as read back after
	// they were applied.
	server, issuer *appsv1.Deployment
	// storeState is the data of the store-state ConfigMap, once the issuer phase has read it.
	storeState     map[string]string
	storeStateRead bool
}

// The verbs are the ones the controller uses: Secrets are created and updated with
// optimistic concurrency; every other kind is server-side applied (patch, create) and only
// deleted when a part is switched off. authservices/finalizers lets owner references block
// the AuthService's deletion until the garbage collector has removed its objects; patch on
// authservices adds and removes the operator's own finalizer. The issuer's Role grants only
// what the operator holds (reading Secrets); its ClusterRoleBinding needs bind on the one
// ClusterRole it names, not the TokenReview permission itself.
//
// +kubebuilder:rbac:groups=auth.hiringo.tech,resources=authservices,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=auth.hiringo.tech,resources=authservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=auth.hiringo.tech,resources=authservices/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=auth-operator-issuer

// Reconcile brings one AuthService's objects in line with its spec: keys, then Redis, then
// the auth server. Every phase runs even when an earlier one failed; the status is patched
// once at the end, and observedGeneration moves only when every phase succeeded.
//
// It returns a Result or an error, never both: controller-runtime ignores the Result that
// comes with an error and retries with its backoff (up to about 16 minutes). Only a failed
// keys phase returns an error, as no rotation can happen without it; a failing Redis or
// auth server is reported in the conditions and events and retried after workloadRetry, or
// at the next rotation if that comes first, so it never delays a rotation.
func (r *AuthServiceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	result, err := r.reconcile(ctx, req)
	if err != nil {
		return reconcile.Result{}, err
	}
	return result, nil
}

func (r *AuthServiceReconciler) reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, reterr error) {
	as := &authv1alpha1.AuthService{}
	if err := r.Client.Get(ctx, req.NamespacedName, as); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading AuthService: %w", err)
	}
	if !as.DeletionTimestamp.IsZero() {
		// Owner references let the garbage collector remove every namespaced object the
		// operator made; the cluster-scoped ones go here.
		return reconcile.Result{}, r.finalize(ctx, as)
	}
	if err := r.ensureFinalizer(ctx, as); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: conflictRetry}, nil
		}
		return reconcile.Result{}, err
	}
	original := as.DeepCopy()
	// Before the keys phase sets an active key: that is how a new AuthService is told from
	// one that ran before prefixes were recorded.
	recordRedisKeyPrefix(as)
	s := &scope{as: as, now: r.Clock.Now(), image: r.serverImage(as), requireSecretUseLabel: r.RequireSecretUseLabel, failed: map[string]error{}}
	var keysErr error
	var workloadErrs []error
	// incomplete is set by anything that keeps observedGeneration where it is.
	incomplete := false

	defer func() {
		for _, c := range updateStatus(s) {
			if action, warn := warningActions[c.Reason]; warn {
				r.Recorder.Eventf(as, nil, corev1.EventTypeWarning, c.Reason, action, "%s", c.Message)
			}
		}
		if err := r.patchStatus(ctx, original, as, !incomplete); err != nil && ctx.Err() == nil {
			reterr = errors.Join(reterr, err)
		}
	}()

	for _, p := range []struct {
		condition string
		run       func(context.Context, *scope) (reconcile.Result, error)
	}{
		{authv1alpha1.KeysReadyCondition, r.reconcileKeys},
		{authv1alpha1.RedisReadyCondition, r.reconcileRedis},
		{authv1alpha1.TLSReadyCondition, r.reconcileTLS},
		{authv1alpha1.ServerReadyCondition, r.reconcileServer},
		{authv1alpha1.IssuerReadyCondition, r.reconcileIssuer},
	} {
		res, err := p.run(ctx, s)
		if err != nil {
			s.failed[p.condition] = err
			incomplete = true
		}
		switch {
		case isForeign(err):
			result = earliest(result, reconcile.Result{RequeueAfter: foreignRetry})
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			// The cache was behind a write of ours: read again shortly instead of failing.
			log.FromContext(ctx).V(1).Info("write raced a newer version, retrying", "phase", p.condition, "error", err.Error())
			result = earliest(result, reconcile.Result{RequeueAfter: conflictRetry})
		case err != nil && p.condition == authv1alpha1.KeysReadyCondition:
			keysErr = err
		case err != nil:
			workloadErrs = append(workloadErrs, err)
		default:
			result = earliest(result, res)
		}
	}
	switch {
	case ctx.Err() != nil:
		// The manager is shutting down: the next leader redoes this pass from the API.
		return result, nil
	case keysErr != nil:
		return reconcile.Result{}, errors.Join(append([]error{keysErr}, workloadErrs...)...)
	case len(workloadErrs) > 0:
		log.FromContext(ctx).Error(errors.Join(workloadErrs...), "reconcile failed, retrying", "after", workloadRetry)
		return earliest(result, reconcile.Result{RequeueAfter: workloadRetry}), nil
	}
	return result, nil
}

// earliest merges two results: the lowest non-zero RequeueAfter wins.
func earliest(a, b reconcile.Result) reconcile.Result {
	switch {
	case a.RequeueAfter <= 0:
		return b
	case b.RequeueAfter <= 0 || a.RequeueAfter <= b.RequeueAfter:
		return a
	default:
		return b
	}
}

// patchStatus patches the status subresource when anything changed.
func (r *AuthServiceReconciler) patchStatus(ctx context.Context, original, as *authv1alpha1.AuthService, succeeded bool) error {
	if succeeded {
		as.Status.ObservedGeneration = as.Generation
	}
	ready := 0.0
	if meta.IsStatusConditionTrue(as.Status.Conditions, authv1alpha1.ReadyCondition) {
		ready = 1
	}
	readyStatus.WithLabelValues(as.Namespace, as.Name).Set(ready)
	if equality.Semantic.DeepEqual(original.Status, as.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, as, client.MergeFrom(original)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching AuthService status: %w", err)
	}
	return nil
}

// deletionStarted passes the update that marks an AuthService for deletion, which its
// finalizer waits on, whether or not the API server moved its generation.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// referencedSecretIndex indexes AuthServices by the Secrets their spec names
// (ReferencedSecretNames), so that a change to one reconciles those that use it.
const referencedSecretIndex = "spec.referencedSecretNames"

// SetupWithManager registers the controller: it watches AuthServices (spec and annotation
// changes, not its own status writes), every kind of object it owns and the Secrets the
// AuthServices name. Those are the user's and carry no operator label, so the manager's
// cache leaves them out (CacheOptions): they are watched through a cache of their own that
// holds each Secret's name, namespace, UID and resourceVersion alone: not its data, nor its
// annotations, where kubectl apply keeps a copy of the data.
func (r *AuthServiceReconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &authv1alpha1.AuthService{}, referencedSecretIndex, func(obj client.Object) []string {
		return obj.(*authv1alpha1.AuthService).ReferencedSecretNames()
	}); err != nil {
		return fmt.Errorf("indexing AuthServices by the Secrets they name: %w", err)
	}
	secrets, err := cluster.New(mgr.GetConfig(), func(o *cluster.Options) {
		o.Scheme, o.Cache.DefaultTransform = mgr.GetScheme(), secretIdentity
	})
	if err != nil {
		return fmt.Errorf("creating the cache of Secrets' metadata: %w", err)
	}
	if err := mgr.Add(secrets); err != nil {
		return err
	}
	secretMetadata := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.AuthService{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted))).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&rbacv1.ClusterRoleBinding{}, handler.EnqueueRequestsFromMapFunc(authServiceOfClusterObject)).
		WatchesRawSource(source.Kind(secrets.GetCache(), secretMetadata, handler.TypedEnqueueRequestsFromMapFunc(r.authServicesNaming))).
		WithOptions(options).
		Named("authservice").
		Complete(r)
}

// authServicesNaming maps a Secret to the AuthServices of its namespace whose spec names it.
func (r *AuthServiceReconciler) authServicesNaming(ctx context.Context, secret *metav1.PartialObjectMetadata) []reconcile.Request {
	list := &authv1alpha1.AuthServiceList{}
	if err := r.Client.List(ctx, list, client.InNamespace(secret.Namespace), client.MatchingFields{referencedSecretIndex: secret.Name}); err != nil {
		log.FromContext(ctx).Error(err, "listing the AuthServices that name a Secret", "secret", secret.Name)
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return requests
}
