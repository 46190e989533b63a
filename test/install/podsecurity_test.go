package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers"
)

// restrictedLabels make the API server's PodSecurity admission reject any pod that breaks the
// restricted Pod Security Standard.
var restrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
}

// podFromTemplate makes the pod a workload controller would create from obj's template. A
// StatefulSet's pods also get the volumes of its claim templates, as the StatefulSet controller adds them.
func podFromTemplate(t *testing.T, obj *unstructured.Unstructured, namespace string) *corev1.Pod {
	t.Helper()
	var template corev1.PodTemplateSpec
	switch obj.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		toTyped(t, obj, &d)
		template = d.Spec.Template
	case "StatefulSet":
		var s appsv1.StatefulSet
		toTyped(t, obj, &s)
		template = s.Spec.Template
		for _, claim := range s.Spec.VolumeClaimTemplates {
			template.Spec.Volumes = append(template.Spec.Volumes, corev1.Volume{
				Name: claim.Name,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: fmt.Sprintf("%s-%s-0", claim.Name, s.Name),
				}},
			})
		}
	default:
		t.Fatalf("%s %s: podFromTemplate knows no pod template of this kind", obj.GetKind(), obj.GetName())
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        strings.ToLower(obj.GetKind()) + "-" + obj.GetName(),
			Namespace:   namespace,
			Labels:      template.Labels,
			Annotations: template.Annotations,
		},
		Spec: template.Spec,
	}
}

// admitPod asks the API server to create pod without storing it (a server-side dry run runs
// every admission plugin, PodSecurity included).
func admitPod(ctx context.Context, pod *corev1.Pod) error {
	return k8sClient.Create(ctx, pod.DeepCopy(), client.DryRunAll)
}

// workloads returns the Deployments and StatefulSets of objs; any other kind that makes pods
// fails the test until podFromTemplate learns it.
func workloads(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "StatefulSet":
			out = append(out, o)
		case "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet", "ReplicationController":
			t.Fatalf("%s %s: teach podFromTemplate this kind so its pods are checked", o.GetKind(), o.GetName())
		}
	}
	return out
}

func TestRestrictedNamespace_RejectsAViolatingPod(t *testing.T) {
	createNamespace(t, "pss-control", restrictedLabels)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: "pss-control"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	err := admitPod(t.Context(), pod)
	if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
		t.Fatalf("a pod without a security context was admitted into a restricted namespace (err %v): the checks below would prove nothing", err)
	}
}

func TestInstallPods_PassRestrictedPodSecurity(t *testing.T) {
	const ns = "pss-install"
	createNamespace(t, ns, restrictedLabels)
	sources := map[string][]byte{
		"chart, default values":       tools.helmTemplate(t, "ops", ns, nil),
		"chart, every feature on":     tools.helmTemplate(t, "ops", ns, []string{allFeaturesValues}),
		"dist/install.yaml":           readFile(t, installYAML),
		"config/default with opt-ins": []byte(tools.mustRun(t, nil, tools.kustomize, "build", optInConfig(t)+"/default").stdout),
	}
	for name, manifests := range sources {
		t.Run(name, func(t *testing.T) {
			found := workloads(t, decodeObjects(t, manifests))
			if len(found) == 0 {
				t.Fatal("no workload rendered")
			}
			for _, w := range found {
				if err := admitPod(t.Context(), podFromTemplate(t, w, ns)); err != nil {
					t.Errorf("%s %s: %v", w.GetKind(), w.GetName(), err)
				}
			}
		})
	}
}

// operatorTimeout bounds the wait for the operator to create an AuthService's workloads.
const operatorTimeout = 90 * time.Second

// startOperator runs the real AuthService reconciler against the test API server until the
// test ends.
func startOperator(t *testing.T, authServerImage string) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(apiServer.Config, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	reconciler := &controllers.AuthServiceReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Scheme:             mgr.GetScheme(),
		Recorder:           mgr.GetEventRecorder("auth-operator"),
		Clock:              clock.RealClock{},
		DefaultServerImage: authServerImage,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatalf("set the controller up: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// waitForObject waits until the operator has created obj (set its name and namespace first).
// deleteAuthServicesWhileTheOperatorRuns deletes, when the test ends but before the operator
// started earlier stops (cleanups run last in, first out), the AuthServices of a namespace
// and waits until the operator has finalized them: their finalizer deletes the issuer's
// ClusterRoleBinding. Uninstalling goes in that order, or a deleted CRD waits on them.
func deleteAuthServicesWhileTheOperatorRuns(t *testing.T, namespace string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), operatorTimeout)
		defer cancel()
		as := &unstructured.Unstructured{}
		as.SetGroupVersionKind(authServiceGVK)
		if err := k8sClient.DeleteAllOf(ctx, as, client.InNamespace(namespace)); err != nil {
			t.Errorf("delete the AuthServices of %s: %v", namespace, err)
			return
		}
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(authServiceGVK.GroupVersion().WithKind("AuthServiceList"))
			if err := k8sClient.List(ctx, list, client.InNamespace(namespace)); err != nil {
				return false, err
			}
			return len(list.Items) == 0, nil
		})
		if err != nil {
			t.Errorf("the operator did not finalize the AuthServices of %s within %s: %v", namespace, operatorTimeout, err)
		}
	})
}

func waitForObject(t *testing.T, obj client.Object) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, operatorTimeout, true, func(ctx context.Context) (bool, error) {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err == nil {
			return true, nil
		}
		return false, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("the operator did not create %T %s/%s within %s: %v", obj, obj.GetNamespace(), obj.GetName(), operatorTimeout, err)
	}
}

// The operator's own pod specs: the verifier, the issuer and both shapes of the managed Redis, each
// created by the real reconciler in a namespace that enforces the restricted standard.
func TestOperatorPods_PassRestrictedPodSecurity(t *testing.T) {
	const ns = "pss-operator"
	deleteCRDAfterwardsIfNew(t, authServiceCRD)
	tools.mustRun(t, nil, tools.kubectl, "apply", "--server-side", "-f", "config/crd/bases")
	waitCRDEstablished(t, authServiceCRD)
	createNamespace(t, ns, restrictedLabels)
	startOperator(t, "registry.example.com/auth-operator:test")
	deleteAuthServicesWhileTheOperatorRuns(t, ns)

	specs := map[string]string{
		"persistent": `{"redis":{"managed":{}}}`,
		"ephemeral":  `{"redis":{"managed":{"persistence":{"enabled":false}}},"server":{"podDisruptionBudget":{"enabled":true}}}`,
		"external":   `{"redis":{"external":{"addresses":["redis.example.com:6379"]}}}`,
	}
	for name, spec := range specs {
		as := &unstructured.Unstructured{}
		as.SetGroupVersionKind(authServiceGVK)
		as.SetNamespace(ns)
		as.SetName(name)
		var content map[string]any
		if err := json.Unmarshal([]byte(spec), &content); err != nil {
			t.Fatal(err)
		}
		as.Object["spec"] = content
		if err := k8sClient.Create(t.Context(), as); err != nil {
			t.Fatalf("create AuthService %s: %v", name, err)
		}
	}

	want := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "persistent-authserver"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "persistent-redis"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ephemeral-authserver"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ephemeral-redis"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external-authserver"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "persistent-issuer"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external-issuer"}},
	}
	var errs []error
	for _, obj := range want {
		waitForObject(t, obj)
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: content}
		switch obj.(type) {
		case *appsv1.Deployment:
			u.SetKind("Deployment")
		case *appsv1.StatefulSet:
			u.SetKind("StatefulSet")
		}
		if err := admitPod(t.Context(), podFromTemplate(t, u, ns)); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}
