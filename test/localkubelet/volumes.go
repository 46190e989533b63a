package localkubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/internal/atomicdir"
)

// defaultVolumeMode is the kubelet's default mode for projected files (0644).
const defaultVolumeMode = os.FileMode(0o644)

// errVolumeSourceMissing marks a volume whose Secret or ConfigMap does not exist yet; the
// kubelet keeps such a pod waiting, and so does the runner.
var errVolumeSourceMissing = errors.New("volume source not found")

// podVolume is a pod volume as the runner holds it locally.
type podVolume struct {
	name string
	// localPath is the directory that stands for the volume.
	localPath string
	// source is the volume as the pod spec declares it.
	source corev1.VolumeSource
	// projected is true for Secret, ConfigMap and projected volumes: their content comes
	// from API objects and follows their updates.
	projected bool
	// version is the resource versions of the objects last written, to skip unchanged ones.
	version string
}

// projectKeys selects the files of a Secret or ConfigMap volume: every key, or only the
// listed items under their paths. A listed key that is missing is an error unless the
// source is optional.
func projectKeys(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool) (map[string]atomicdir.File, error) {
	mode := defaultVolumeMode
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	files := map[string]atomicdir.File{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = atomicdir.File{Data: v, Mode: mode}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("key %q not found", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files[it.Path] = atomicdir.File{Data: v, Mode: m}
	}
	return files, nil
}

// volumeFiles reads the objects behind a projected volume and returns its files and the
// resource versions they were read at.
func volumeFiles(ctx context.Context, reader client.Reader, namespace string, src corev1.VolumeSource) (map[string]atomicdir.File, string, error) {
	switch {
	case src.Secret != nil:
		return secretFiles(ctx, reader, namespace, src.Secret.SecretName, src.Secret.Items, src.Secret.DefaultMode, src.Secret.Optional)
	case src.ConfigMap != nil:
		return configMapFiles(ctx, reader, namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.DefaultMode, src.ConfigMap.Optional)
	case src.Projected != nil:
		all := map[string]atomicdir.File{}
		var versions []string
		for _, s := range src.Projected.Sources {
			var files map[string]atomicdir.File
			var version string
			var err error
			switch {
			case s.Secret != nil:
				files, version, err = secretFiles(ctx, reader, namespace, s.Secret.Name, s.Secret.Items, src.Projected.DefaultMode, s.Secret.Optional)
			case s.ConfigMap != nil:
				files, version, err = configMapFiles(ctx, reader, namespace, s.ConfigMap.Name, s.ConfigMap.Items, src.Projected.DefaultMode, s.ConfigMap.Optional)
			default:
				continue
			}
			if err != nil {
				return nil, "", err
			}
			for k, v := range files {
				all[k] = v
			}
			versions = append(versions, version)
		}
		return all, strings.Join(versions, ","), nil
	}
	return nil, "", fmt.Errorf("volume source is not projected")
}

func secretFiles(ctx context.Context, reader client.Reader, namespace, name string, items []corev1.KeyToPath, mode *int32, optional *bool) (map[string]atomicdir.File, string, error) {
	var s corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			if optional != nil && *optional {
				return map[string]atomicdir.File{}, "absent", nil
			}
			return nil, "", fmt.Errorf("secret %q: %w", name, errVolumeSourceMissing)
		}
		return nil, "", fmt.Errorf("reading secret %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	files, err := projectKeys(data, items, mode, optional != nil && *optional)
	if err != nil {
		return nil, "", fmt.Errorf("secret %q: %w", name, err)
	}
	return files, s.ResourceVersion, nil
}

func configMapFiles(ctx context.Context, reader client.Reader, namespace, name string, items []corev1.KeyToPath, mode *int32, optional *bool) (map[string]atomicdir.File, string, error) {
	var cm corev1.ConfigMap
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			if optional != nil && *optional {
				return map[string]atomicdir.File{}, "absent", nil
			}
			return nil, "", fmt.Errorf("configmap %q: %w", name, errVolumeSourceMissing)
		}
		return nil, "", fmt.Errorf("reading configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	files, err := projectKeys(data, items, mode, optional != nil && *optional)
	if err != nil {
		return nil, "", fmt.Errorf("configmap %q: %w", name, err)
	}
	return files, cm.ResourceVersion, nil
}

// planVolumes decides where each volume of a pod lives: emptyDir and anything the runner
// does not emulate in the pod's directory, persistent claims under claimsDir (so they
// outlive the pod), projected volumes in the pod's directory too.
func planVolumes(volumes []corev1.Volume, podDir, claimsDir string) []*podVolume {
	out := make([]*podVolume, 0, len(volumes))
	for _, v := range volumes {
		pv := &podVolume{name: v.Name, source: v.VolumeSource, localPath: filepath.Join(podDir, "volumes", v.Name)}
		switch {
		case v.PersistentVolumeClaim != nil:
			pv.localPath = filepath.Join(claimsDir, v.PersistentVolumeClaim.ClaimName)
		case v.Secret != nil, v.ConfigMap != nil, v.Projected != nil:
			pv.projected = true
		}
		out = append(out, pv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// materialize writes a volume's content: a directory for emptyDir and claims, the
// kubelet's atomic layout for projected volumes. It reports whether anything changed.
func (v *podVolume) materialize(ctx context.Context, reader client.Reader, namespace string, now time.Time) (bool, error) {
	if !v.projected {
		if err := os.MkdirAll(v.localPath, 0o755); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.name, err)
		}
		return false, nil
	}
	files, version, err := volumeFiles(ctx, reader, namespace, v.source)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", v.name, err)
	}
	if version == v.version {
		return false, nil
	}
	changed, err := atomicdir.Write(v.localPath, files, now)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", v.name, err)
	}
	v.version = version
	return changed, nil
}
