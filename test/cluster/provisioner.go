package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The node's dynamic provisioner of local volumes: a folder under the run folder for each
// claim of its StorageClass, made once the scheduler has picked the node (the class binds on
// first consumer), as a local PersistentVolume, which the kubelet mounts and gives the pod's
// fsGroup. Kubernetes ships no provisioner; clusters run one (kind runs local-path).
const (
	StorageClassName = "standard"
	ProvisionerName  = "auth-operator-node/local"
	// The annotations the volume controller and the scheduler write on a claim to hand it
	// to an external provisioner, and the one a provisioner writes on its volumes.
	storageProvisionerAnnotation = "volume.kubernetes.io/storage-provisioner"
	selectedNodeAnnotation       = "volume.kubernetes.io/selected-node"
	provisionedByAnnotation      = "pv.kubernetes.io/provisioned-by"
)

// provisionOnce makes a volume for every claim waiting for this provisioner, and removes
// the released volumes it made with their folders.
func provisionOnce(ctx context.Context, c client.Client, root string) error {
	var claims corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &claims); err != nil {
		return err
	}
	var errs []error
	for i := range claims.Items {
		pvc := &claims.Items[i]
		if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" ||
			pvc.Annotations[storageProvisionerAnnotation] != ProvisionerName || pvc.Annotations[selectedNodeAnnotation] == "" {
			continue
		}
		pv := localVolume(pvc, filepath.Join(root, "pvc-"+string(pvc.UID)))
		if err := os.MkdirAll(pv.Spec.Local.Path, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.Create(ctx, pv); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("creating volume for %s/%s: %w", pvc.Namespace, pvc.Name, err))
		}
	}
	var volumes corev1.PersistentVolumeList
	if err := c.List(ctx, &volumes); err != nil {
		return err
	}
	for i := range volumes.Items {
		pv := &volumes.Items[i]
		if pv.Annotations[provisionedByAnnotation] != ProvisionerName || pv.Status.Phase != corev1.VolumeReleased {
			continue
		}
		if pv.Spec.Local != nil {
			if err := os.RemoveAll(pv.Spec.Local.Path); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := c.Delete(ctx, pv); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// localVolume is the volume for a claim: a local folder on the node, bound to the claim.
func localVolume(pvc *corev1.PersistentVolumeClaim, dir string) *corev1.PersistentVolume {
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
			StorageClassName:              StorageClassName,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{NodeName},
				}}}},
			}},
		},
	}
}

// runProvisioner provisions every half second until ctx ends, logging failures.
func runProvisioner(ctx context.Context, c client.Client, root string, logf func(string, ...any)) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if err := provisionOnce(ctx, c, root); err != nil && ctx.Err() == nil {
			logf("provisioner: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
