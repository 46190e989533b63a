package localkubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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
	// localPath is the directory that stands for the volume; for a claim it is the bound
	// PersistentVolume's directory, known once the claim is bound.
	localPath string
	// source is the volume as the pod spec declares it.
	source corev1.VolumeSource
	// projected is true for Secret, ConfigMap, downwardAPI and projected volumes: their
	// content comes from the API and follows its updates.
	projected bool
	// version is the resource versions (and token issue times) of the content last
	// written, to skip unchanged ones.
	version string
	// tokens are the service-account tokens of a projected volume, by file path.
	tokens map[string]issuedToken
}

// issuedToken is a service-account token the runner asked the TokenRequest API for.
type issuedToken struct {
	token    string
	issuedAt time.Time
	expiry   time.Time
}

// due reports whether the kubelet would ask for a new token: once 80% of its lifetime
// has passed, or after 24 hours.
func (t issuedToken) due(now time.Time) bool {
	if t.token == "" {
		return true
	}
	life := t.expiry.Sub(t.issuedAt)
	return now.After(t.issuedAt.Add(life*8/10)) || now.After(t.issuedAt.Add(24*time.Hour))
}

// TokenRequester asks the TokenRequest API for a token of the pod's ServiceAccount, bound
// to the pod, with the audience (empty: the API server's) and lifetime given.
type TokenRequester func(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (token string, expiry time.Time, err error)

// volumeSources is what volume content is read from: the API objects, the pod itself
// (downward API) and the TokenRequest API.
type volumeSources struct {
	reader client.Reader
	pod    *corev1.Pod
	tokens TokenRequester
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
func (v *podVolume) volumeFiles(ctx context.Context, in volumeSources, now time.Time) (map[string]atomicdir.File, string, error) {
	reader, namespace, src := in.reader, in.pod.Namespace, v.source
	switch {
	case src.DownwardAPI != nil:
		files, err := downwardAPIFiles(in.pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode)
		if err != nil {
			return nil, "", err
		}
		return files, contentVersion(files), nil
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
			case s.DownwardAPI != nil:
				files, err = downwardAPIFiles(in.pod, s.DownwardAPI.Items, src.Projected.DefaultMode)
				version = contentVersion(files)
			case s.ServiceAccountToken != nil:
				files, version, err = v.tokenFile(ctx, in, *s.ServiceAccountToken, src.Projected.DefaultMode, now)
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
// does not emulate in the pod's directory, persistent claims in their bound volume's
// directory (so they outlive the pod), projected volumes in the pod's directory too.
func planVolumes(volumes []corev1.Volume, podDir string) []*podVolume {
	out := make([]*podVolume, 0, len(volumes))
	for _, v := range volumes {
		pv := &podVolume{name: v.Name, source: v.VolumeSource, localPath: filepath.Join(podDir, "volumes", v.Name)}
		switch {
		case v.PersistentVolumeClaim != nil:
			pv.localPath = ""
		case v.Secret != nil, v.ConfigMap != nil, v.Projected != nil, v.DownwardAPI != nil:
			pv.projected = true
		}
		out = append(out, pv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// materialize writes a volume's content: a directory for emptyDir, the bound volume's
// directory for a claim, the kubelet's atomic layout for projected volumes. It reports
// whether anything changed.
func (v *podVolume) materialize(ctx context.Context, in volumeSources, now time.Time) (bool, error) {
	if claim := v.source.PersistentVolumeClaim; claim != nil {
		if v.localPath == "" {
			dir, err := claimDir(ctx, in.reader, in.pod.Namespace, claim.ClaimName)
			if err != nil {
				return false, fmt.Errorf("volume %s: %w", v.name, err)
			}
			v.localPath = dir
		}
		return false, nil
	}
	if !v.projected {
		if err := os.MkdirAll(v.localPath, 0o755); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.name, err)
		}
		return false, nil
	}
	files, version, err := v.volumeFiles(ctx, in, now)
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

// claimDir finds the directory of the PersistentVolume a claim is bound to.
func claimDir(ctx context.Context, reader client.Reader, namespace, name string) (string, error) {
	var pvc corev1.PersistentVolumeClaim
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &pvc); err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound yet", name)
	}
	var pv corev1.PersistentVolume
	if err := reader.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		return "", fmt.Errorf("persistentvolume %q: %w", pvc.Spec.VolumeName, err)
	}
	if pv.Spec.HostPath == nil {
		return "", fmt.Errorf("persistentvolume %q is not a hostPath volume, the only kind the local kubelet mounts", pv.Name)
	}
	return pv.Spec.HostPath.Path, nil
}

// tokenFile returns the file of a serviceAccountToken projection, asking for a new token
// when the one held is due for renewal.
func (v *podVolume) tokenFile(ctx context.Context, in volumeSources, src corev1.ServiceAccountTokenProjection, mode *int32, now time.Time) (map[string]atomicdir.File, string, error) {
	if in.tokens == nil {
		return nil, "", errors.New("serviceAccountToken: no TokenRequest client")
	}
	if v.tokens == nil {
		v.tokens = map[string]issuedToken{}
	}
	t := v.tokens[src.Path]
	if t.due(now) {
		exp := int64(3600)
		if src.ExpirationSeconds != nil {
			exp = *src.ExpirationSeconds
		}
		tok, expiry, err := in.tokens(ctx, in.pod, src.Audience, exp)
		if err != nil {
			return nil, "", fmt.Errorf("serviceAccountToken: %w", err)
		}
		t = issuedToken{token: tok, issuedAt: now, expiry: expiry}
		v.tokens[src.Path] = t
	}
	m := defaultVolumeMode
	if mode != nil {
		m = os.FileMode(*mode)
	}
	return map[string]atomicdir.File{src.Path: {Data: []byte(t.token), Mode: m}}, "token@" + t.issuedAt.Format(time.RFC3339Nano), nil
}

// downwardAPIFiles writes the pod fields a downwardAPI volume asks for, formatted as the
// kubelet formats them (labels and annotations one key="value" line each, sorted).
func downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]atomicdir.File, error) {
	mode := defaultVolumeMode
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	files := map[string]atomicdir.File{}
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("downwardAPI %s: only fieldRef is emulated", it.Path)
		}
		var value string
		switch it.FieldRef.FieldPath {
		case "metadata.labels":
			value = formatMap(pod.Labels)
		case "metadata.annotations":
			value = formatMap(pod.Annotations)
		default:
			var err error
			if value, err = downwardField(identityOf(pod), it.FieldRef.FieldPath); err != nil {
				return nil, fmt.Errorf("downwardAPI %s: %w", it.Path, err)
			}
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files[it.Path] = atomicdir.File{Data: []byte(value), Mode: m}
	}
	return files, nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}

// contentVersion names file content, for sources that have no resource version.
func contentVersion(files map[string]atomicdir.File) string {
	h := sha256.New()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", n, files[n].Mode, len(files[n].Data))
		h.Write(files[n].Data)
	}
	return "content@" + hex.EncodeToString(h.Sum(nil))
}
