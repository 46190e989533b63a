package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

// keyPolicy is the lifecycle policy an AuthService's spec sets, with the operator's minimum
// publish time of a next key.
func keyPolicy(as *authv1alpha1.AuthService, minPublishTime time.Duration) keylifecycle.Policy {
	revoked := make([]string, 0, len(as.Spec.SigningKeys.RevokedKeyIDs))
	for _, kid := range as.Spec.SigningKeys.RevokedKeyIDs {
		revoked = append(revoked, string(kid))
	}
	return keylifecycle.Policy{
		RotationInterval: as.Spec.SigningKeys.RotationInterval.Duration,
		MaxTokenLifetime: as.Spec.Tokens.MaxLifetime.Duration,
		RefreshLifetime:  as.Spec.Tokens.RefreshLifetime.Duration,
		Leeway:           as.Spec.Tokens.Leeway.Duration,
		Revoked:          revoked,
		MinPublishTime:   minPublishTime,
	}
}

// keysFound is what the keys phase found: a signing-key Secret that does not hold a valid
// key set (left untouched), or the plan it wrote.
type keysFound struct {
	invalid error
	plan    *keylifecycle.Plan
}

// reconcileKeys moves the signing keys along their lifecycle, stores them in the Secret,
// publishes their public projection and the JWKS and records the schedule in the status. The Secret is the source of
// truth: it is read back on every pass and written with optimistic concurrency, so a
// stale read or a second writer fails instead of rotating twice.
func (r *AuthServiceReconciler) reconcileKeys(ctx context.Context, s *scope) (reconcile.Result, error) {
	as := s.as
	secret, err := r.ownSecret(ctx, as, as.SigningKeysSecretName())
	if err != nil {
		return reconcile.Result{}, err
	}
	var (
		current keydomain.Set
		record  keylifecycle.Record
	)
	if secret != nil {
		if current, err = keyfiles.Decode(secret.Data); err != nil {
			// Overwriting it would throw away keys that tokens in flight depend on.
			s.keys.invalid = err
			return reconcile.Result{}, nil
		}
		record = keylifecycle.Record{
			HandledRequest: secret.Annotations[LastRotationRequestAnnotation],
			LostKeyID:      secret.Annotations[KeysLostAnnotation],
		}
	}
	plan, err := keylifecycle.Next(keylifecycle.Request{
		Current:       current,
		Policy:        keyPolicy(as, r.minPublishTime(as)),
		Now:           s.now,
		RotateRequest: as.Annotations[authv1alpha1.RotateAnnotation],
		Record:        record,
		Reported: keylifecycle.Reported{
			ActiveKeyID:    as.Status.ActiveKeyID,
			HandledRequest: as.Status.LastRotationRequest,
		},
	}, r.generator())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("planning signing keys: %w", err)
	}
	// Every key that signs or will sign has a refresh-token key, never published: a set
	// written before they existed gets them s.now, and the issuer signs refresh tokens with
	// them from then on.
	if plan.Set, _, err = keyfiles.WithRefreshKeys(plan.Set); err != nil {
		return reconcile.Result{}, fmt.Errorf("adding refresh-token keys: %w", err)
	}

	files, err := keyfiles.Encode(plan.Set)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("encoding signing keys: %w", err)
	}
	if _, err := r.writeSecret(ctx, as, secret, signingKeysSecret(as, files, plan.Record), secretMerge{
		ownedAnnotations: []string{LastRotationRequestAnnotation, KeysLostAnnotation},
		replaceData:      true,
	}); err != nil {
		return reconcile.Result{}, err
	}
	r.recordKeyEvents(as, plan)

	// The verifiers and the JWKS get the keys whose access window is open, public parts
	// only; retired keys kept for refresh tokens stay in the Secret, for the issuer.
	projection, err := keyfiles.PublicProjection(plan.Set, s.now)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("projecting public keys: %w", err)
	}
	withdrawn := r.withdrawnKeys(ctx, as, plan.Set, s.now)
	if err := r.writePublicKeys(ctx, as, publicKeysSecret(as, projection)); err != nil {
		return reconcile.Result{}, err
	}
	for _, k := range withdrawn {
		r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyUnpublished, "UnpublishKeys",
			"Retired key %s is no longer published: every access token it signed has expired; the issuer verifies refresh tokens with it until %s",
			k.ID, k.RefreshExpiresAt.UTC().Format(time.RFC3339))
	}
	jwks, err := keyfiles.JWKS(plan.Set.Published(s.now))
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.apply(ctx, as, jwksConfigMap(as, jwks)); err != nil {
		return reconcile.Result{}, err
	}

	recordKeyStatus(s, plan)
	return reconcile.Result{RequeueAfter: plan.RequeueAfter}, nil
}

func (r *AuthServiceReconciler) generator() keylifecycle.Generator {
	if r.GenerateKey != nil {
		return r.GenerateKey
	}
	return keyfiles.GenerateKey
}

// signingKeysSecret holds the key set's files and, in its annotations, the planner's
// bookkeeping, so both are written (and conflict) together.
func signingKeysSecret(as *authv1alpha1.AuthService, files map[string][]byte, record keylifecycle.Record) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      as.SigningKeysSecretName(),
			Namespace: as.Namespace,
			Labels:    objects.Labels(as, objects.AppVerifier, componentSigningKeys),
		},
		Type: corev1.SecretTypeOpaque,
		Data: files,
	}
	s.Annotations = map[string]string{}
	if record.HandledRequest != "" {
		s.Annotations[LastRotationRequestAnnotation] = record.HandledRequest
	}
	if record.LostKeyID != "" {
		s.Annotations[KeysLostAnnotation] = record.LostKeyID
	}
	return s
}

// withdrawnKeys are the retired keys that the stored projection still lists but whose access
// window has closed: this pass withdraws them. A projection that is missing or unreadable
// names none; it is rewritten either way.
func (r *AuthServiceReconciler) withdrawnKeys(ctx context.Context, as *authv1alpha1.AuthService, set keydomain.Set, now time.Time) []keydomain.Key {
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: as.PublicKeysSecretName()}, secret); err != nil {
		return nil
	}
	var stored keyfiles.Manifest
	if err := json.Unmarshal(secret.Data[keyfiles.ManifestFile], &stored); err != nil {
		return nil
	}
	var out []keydomain.Key
	for _, m := range stored.Keys {
		if k, ok := set.Lookup(m.ID); ok && k.State == keydomain.StateRetired && !k.AccessOpen(now) && k.RefreshExpiresAt != nil {
			out = append(out, k)
		}
	}
	return out
}

// writePublicKeys writes the public projection as the signing keys are written: created,
// or updated at the version read, its data replaced whole (a file someone added goes).
func (r *AuthServiceReconciler) writePublicKeys(ctx context.Context, as *authv1alpha1.AuthService, desired *corev1.Secret) error {
	current, err := r.ownSecret(ctx, as, desired.Name)
	if err != nil {
		return err
	}
	_, err = r.writeSecret(ctx, as, current, desired, secretMerge{replaceData: true})
	return err
}

// publicKeysSecret holds the public projection of the keys, in the keyfiles layout
// without a single private key file: what the verifiers mount (see PublicKeysSecretName).
func publicKeysSecret(as *authv1alpha1.AuthService, files map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      as.PublicKeysSecretName(),
			Namespace: as.Namespace,
			Labels:    objects.Labels(as, objects.AppVerifier, componentPublicKeys),
		},
		Type: corev1.SecretTypeOpaque,
		Data: maps.Clone(files),
	}
}

func jwksConfigMap(as *authv1alpha1.AuthService, jwks []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      as.JWKSConfigMapName(),
			Namespace: as.Namespace,
			Labels:    objects.Labels(as, objects.AppVerifier, componentJWKS),
		},
		Data: map[string]string{JWKSKey: string(jwks)},
	}
}

func (r *AuthServiceReconciler) recordKeyEvents(as *authv1alpha1.AuthService, plan keylifecycle.Plan) {
	if plan.KeysLost {
		active, _ := plan.Set.Active()
		r.Recorder.Eventf(as, nil, corev1.EventTypeWarning, authv1alpha1.ReasonSecretRecreated, "RecreateKeys",
			"Secret %s was deleted and its keys are gone: tokens signed by key %s no longer verify; new keys were generated and key %s now signs",
			as.SigningKeysSecretName(), plan.Record.LostKeyID, active.ID)
		return
	}
	var created []string
	for _, e := range plan.Events {
		switch e.Type {
		case keylifecycle.KeyCreated:
			created = append(created, fmt.Sprintf("%s (%s)", e.KeyID, e.State))
		case keylifecycle.KeyRotated:
			trigger := "schedule"
			switch {
			case e.PreviousKeyID == "":
				trigger = "revocation"
				r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyRotated, "RotateKeys", "Key %s now signs, promoted at once because the active key was revoked", e.KeyID)
			case e.Manual:
				trigger = "manual"
				r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyRotated, "RotateKeys", "Key %s now signs after a requested rotation; key %s is retired and verifies until its tokens expire", e.KeyID, e.PreviousKeyID)
			default:
				r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyRotated, "RotateKeys", "Key %s now signs on schedule; key %s is retired and verifies until its tokens expire", e.KeyID, e.PreviousKeyID)
			}
			keyRotations.WithLabelValues(as.Namespace, as.Name, trigger).Inc()
		case keylifecycle.KeyRevoked:
			r.Recorder.Eventf(as, nil, corev1.EventTypeWarning, authv1alpha1.EventKeyRevoked, "RevokeKeys", "Revoked %s key %s %s (spec.signingKeys.revokedKeyIDs): it is no longer published and every token it signed fails verification",
				e.State, e.KeyID, revokerText(revokedBy(as.ManagedFields, e.KeyID)))
		case keylifecycle.KeyExpired:
			r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyExpired, "DeleteKeys", "Deleted retired key %s: every access and refresh token it signed has expired", e.KeyID)
		}
	}
	if len(created) > 0 {
		r.Recorder.Eventf(as, nil, corev1.EventTypeNormal, authv1alpha1.EventKeyCreated, "CreateKeys", "Published new key(s) %s", strings.Join(created, ", "))
	}
}

// recordKeyStatus records the plan written in the status and in the scope, for KeysReady.
func recordKeyStatus(s *scope, plan keylifecycle.Plan) {
	as := s.as
	active, _ := plan.Set.Active()
	next, _ := plan.Set.Next()
	as.Status.ActiveKeyID = active.ID
	as.Status.NextKeyID = next.ID
	as.Status.LastRotationTime = metaTime(active.ActivatedAt)
	nextRotation := metav1.NewTime(plan.NextRotation)
	as.Status.NextRotationTime = &nextRotation
	as.Status.LastRotationRequest = plan.Record.HandledRequest
	as.Status.Keys = publishedKeys(plan.Set)
	recordNextRotation(as.Namespace, as.Name, plan.NextRotation)
	s.keys.plan = &plan
}

func publishedKeys(s keydomain.Set) []authv1alpha1.PublishedKey {
	out := make([]authv1alpha1.PublishedKey, 0, len(s.Keys))
	for _, k := range s.Keys {
		out = append(out, authv1alpha1.PublishedKey{
			KeyID:            k.ID,
			State:            string(k.State),
			CreatedAt:        metav1.NewTime(k.CreatedAt),
			ActivatedAt:      metaTime(k.ActivatedAt),
			RetiredAt:        metaTime(k.RetiredAt),
			ExpiresAt:        metaTime(k.ExpiresAt),
			RefreshExpiresAt: metaTime(k.RefreshExpiresAt),
		})
	}
	return out
}

func metaTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(*t)
	return &mt
}
