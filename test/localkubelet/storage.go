package localkubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ProvisionerName marks the PersistentVolumes the runner provisions, in the annotation
// an external provisioner sets; the volume controller then leaves their deletion to it.
const ProvisionerName = "localkubelet.auth.hiringo.tech/hostpath"

// provisionedByAnnotation is the annotation the volume controller reads to tell an
// externally provisioned volume.
const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

// volumeForClaim is the PersistentVolume the runner provisions for a claim: a directory
// under dir, pre-bound to the claim (claimRef), which the volume controller of
// kube-controller-manager then binds. Reclaim policy Delete: once the claim is deleted the
// runner removes the volume and its directory, as a dynamic provisioner would.
func volumeForClaim(pvc *corev1.PersistentVolumeClaim, dir string) *corev1.PersistentVolume {
	storageClass := ""
	if pvc.Spec.StorageClassName != nil {
		storageClass = *pvc.Spec.StorageClassName
	}
	mode := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-" + string(pvc.UID),
			Annotations: map[string]string{provisionedByAnnotation: ProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              storageClass,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}
}

// syncVolumes provisions a volume for every pending claim without one, and deletes the
// released volumes the runner provisioned.
func (r *Runner) syncVolumes(ctx context.Context) error {
	var claims corev1.PersistentVolumeClaimList
	if err := r.cache.List(ctx, &claims); err != nil {
		return fmt.Errorf("listing claims: %w", err)
	}
	var errs []error
	for i := range claims.Items {
		pvc := &claims.Items[i]
		if pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil || (pvc.Status.Phase != "" && pvc.Status.Phase != corev1.ClaimPending) {
			continue
		}
		var existing corev1.PersistentVolume
		name := "pvc-" + string(pvc.UID)
		if err := r.cache.Get(ctx, types.NamespacedName{Name: name}, &existing); err == nil || !apierrors.IsNotFound(err) {
			continue
		}
		dir := filepath.Join(r.cfg.WorkDir, "volumes", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("volume directory: %w", err))
			continue
		}
		if err := r.client.Create(ctx, volumeForClaim(pvc, dir)); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("provisioning a volume for %s/%s: %w", pvc.Namespace, pvc.Name, err))
			continue
		}
		r.cfg.Logger.Info("volume provisioned", "claim", pvc.Namespace+"/"+pvc.Name, "volume", name, "dir", dir)
	}

	var volumes corev1.PersistentVolumeList
	if err := r.cache.List(ctx, &volumes); err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing volumes: %w", err))...)
	}
	for i := range volumes.Items {
		pv := &volumes.Items[i]
		if pv.Annotations[provisionedByAnnotation] != ProvisionerName || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
			continue
		}
		if pv.Spec.HostPath != nil {
			if err := os.RemoveAll(pv.Spec.HostPath.Path); err != nil {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", pv.Name, err))
				continue
			}
		}
		if err := r.client.Delete(ctx, pv, client.Preconditions{UID: &pv.UID}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting volume %s: %w", pv.Name, err))
			continue
		}
		r.cfg.Logger.Info("released volume deleted", "volume", pv.Name)
	}
	return errors.Join(errs...)
}
