package localkubelet

import (
	"context"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// podIdentity is what the downward API can tell a container about its pod.
type podIdentity struct {
	Namespace          string
	Name               string
	UID                string
	Labels             map[string]string
	Annotations        map[string]string
	ServiceAccountName string
	NodeName           string
}

func identityOf(pod *corev1.Pod) podIdentity {
	return podIdentity{
		Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID),
		Labels: pod.Labels, Annotations: pod.Annotations,
		ServiceAccountName: pod.Spec.ServiceAccountName, NodeName: pod.Spec.NodeName,
	}
}

// launchInputs is everything a container's launch is built from.
type launchInputs struct {
	Pod       podIdentity
	Container corev1.Container
	Mounts    []PathMapping
	Ports     map[int32]int
	Images    ImageResolver
	Services  ServiceResolver
	Reader    client.Reader
	// Kubeconfig, when set, is a kubeconfig file that reaches the API server with the
	// pod's service-account token, for the program's KubeconfigEnv (and KUBECONFIG).
	Kubeconfig string
	// ServiceEnv is what the kubelet sets before the container's own env: the API
	// server's KUBERNETES_SERVICE_HOST/PORT and the Service links of the namespace.
	ServiceEnv []EnvVar
}

// buildLaunch turns a container of the pod spec into the local process to run: the
// program its image maps to, its environment resolved as the kubelet resolves it, "$(VAR)"
// references expanded in command and args, mount paths remapped to local directories,
// Service addresses rewritten to local ones and its ports bound to loopback.
func buildLaunch(ctx context.Context, in launchInputs) (Launch, error) {
	c := in.Container
	prog, err := in.Images(c.Image, c.Command)
	if err != nil {
		return Launch{}, err
	}
	l := Launch{Path: prog.Path}
	l.SetEnv("PATH", os.Getenv("PATH"))
	l.SetEnv("HOSTNAME", in.Pod.Name)
	for _, e := range in.ServiceEnv {
		l.SetEnv(e.Name, e.Value)
	}
	if err := resolveEnv(ctx, in, &l); err != nil {
		return Launch{}, fmt.Errorf("container %s: %w", c.Name, err)
	}
	vars := make(map[string]string, len(l.Env))
	for _, e := range l.Env {
		vars[e.Name] = e.Value
	}
	var argv []string
	if len(c.Command) > 1 {
		argv = append(argv, c.Command[1:]...)
	}
	argv = append(argv, c.Args...)
	for i := range argv {
		argv[i] = ExpandVars(argv[i], vars)
	}
	l.Args = argv

	for i := range l.Args {
		l.Args[i] = RemapPaths(l.Args[i], in.Mounts)
		if l.Args[i], err = RewriteServiceAddrs(l.Args[i], in.Pod.Namespace, in.Services); err != nil {
			return Launch{}, fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	for i := range l.Env {
		if l.Env[i].Name == "PATH" {
			continue
		}
		l.Env[i].Value = RemapPaths(l.Env[i].Value, in.Mounts)
		if l.Env[i].Value, err = RewriteServiceAddrs(l.Env[i].Value, in.Pod.Namespace, in.Services); err != nil {
			return Launch{}, fmt.Errorf("container %s: env %s: %w", c.Name, l.Env[i].Name, err)
		}
	}
	if in.Kubeconfig != "" {
		for _, name := range []string{"KUBECONFIG", prog.KubeconfigEnv} {
			if name != "" && !l.hasEnv(name) {
				l.SetEnv(name, in.Kubeconfig)
			}
		}
	}
	if prog.Bind != nil && len(in.Ports) > 0 {
		if err := prog.Bind(&l, in.Container, in.Ports); err != nil {
			return Launch{}, fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	return l, nil
}

// resolveEnv appends the container's envFrom and env entries in the kubelet's order, each
// value expanded against the variables defined before it.
func resolveEnv(ctx context.Context, in launchInputs, l *Launch) error {
	ns := in.Pod.Namespace
	for _, from := range in.Container.EnvFrom {
		data, err := envFromData(ctx, in.Reader, ns, from)
		if err != nil {
			return err
		}
		for k, v := range data {
			l.SetEnv(from.Prefix+k, v)
		}
	}
	for _, e := range in.Container.Env {
		vars := make(map[string]string, len(l.Env))
		for _, v := range l.Env {
			vars[v.Name] = v.Value
		}
		if e.ValueFrom == nil {
			l.SetEnv(e.Name, ExpandVars(e.Value, vars))
			continue
		}
		v, ok, err := envValueFrom(ctx, in, *e.ValueFrom)
		if err != nil {
			return fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			l.SetEnv(e.Name, v)
		}
	}
	return nil
}

func envFromData(ctx context.Context, reader client.Reader, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	out := map[string]string{}
	switch {
	case from.SecretRef != nil:
		var s corev1.Secret
		if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: from.SecretRef.Name}, &s); err != nil {
			if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
				return out, nil
			}
			return nil, fmt.Errorf("envFrom secret %q: %w", from.SecretRef.Name, err)
		}
		for k, v := range s.Data {
			out[k] = string(v)
		}
	case from.ConfigMapRef != nil:
		var cm corev1.ConfigMap
		if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: from.ConfigMapRef.Name}, &cm); err != nil {
			if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
				return out, nil
			}
			return nil, fmt.Errorf("envFrom configmap %q: %w", from.ConfigMapRef.Name, err)
		}
		for k, v := range cm.Data {
			out[k] = v
		}
	}
	return out, nil
}

// envValueFrom resolves one valueFrom; ok is false for an optional reference that is
// absent, which leaves the variable unset.
func envValueFrom(ctx context.Context, in launchInputs, src corev1.EnvVarSource) (string, bool, error) {
	ns := in.Pod.Namespace
	switch {
	case src.FieldRef != nil:
		v, err := downwardField(in.Pod, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		var s corev1.Secret
		if err := in.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &s); err != nil {
			if ref.Optional != nil && *ref.Optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q: %w", ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if ref.Optional != nil && *ref.Optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q has no key %q", ref.Name, ref.Key)
		}
		return string(v), true, nil
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		var cm corev1.ConfigMap
		if err := in.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &cm); err != nil {
			if ref.Optional != nil && *ref.Optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if ref.Optional != nil && *ref.Optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q has no key %q", ref.Name, ref.Key)
		}
		return v, true, nil
	default:
		return "", false, fmt.Errorf("only fieldRef, secretKeyRef and configMapKeyRef are emulated")
	}
}

// downwardField answers a fieldRef the way the kubelet would on a node at 127.0.0.1.
func downwardField(p podIdentity, path string) (string, error) {
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return p.UID, nil
	case "spec.serviceAccountName":
		return p.ServiceAccountName, nil
	case "spec.nodeName":
		return p.NodeName, nil
	case "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs":
		// The address the processes really listen on, not the pod CIDR address of the
		// Pod's status, which nothing on this machine answers.
		return "127.0.0.1", nil
	}
	if k, ok := bracketKey(path, "metadata.labels"); ok {
		return p.Labels[k], nil
	}
	if k, ok := bracketKey(path, "metadata.annotations"); ok {
		return p.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldRef %q is not emulated", path)
}

// bracketKey reads KEY from a field path of the form "field['KEY']".
func bracketKey(path, field string) (string, bool) {
	rest, ok := strings.CutPrefix(path, field+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}
