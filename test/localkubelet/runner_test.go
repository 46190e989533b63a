package localkubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

const testNode = "test-node"

// startRunner runs a Runner until the test ends; the returned function stops it early
// and returns what Run returned.
func startRunner(t *testing.T) (*Runner, func() error) {
	t.Helper()
	var logs bytes.Buffer
	r, err := New(Config{
		RESTConfig: testEnv, WorkDir: t.TempDir(), NodeName: testNode,
		Images: DefaultImages("example.test/auth-operator:test", authserverPath, redisPath),
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = r.Run(ctx)
		close(done)
	}()
	stop := func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(30 * time.Second):
			return errors.New("runner did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("runner log:\n%s", logs.String())
			for _, p := range r.Pods() {
				for _, c := range p.Containers {
					data, _ := os.ReadFile(c.LogFile)
					t.Logf("%s/%s log:\n%s", p.Name, c.Name, data)
				}
			}
		}
	})
	select {
	case <-r.Synced():
	case <-done:
		t.Fatalf("runner stopped at start: %v", runErr)
	case <-time.After(30 * time.Second):
		t.Fatal("runner did not sync within 30s")
	}
	return r, stop
}

// redisPod is a pod bound to the test node, as the scheduler binds one: a Redis with the
// projected service-account volume the ServiceAccount admission plugin adds.
func redisPod(ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cache-0", Namespace: ns, Labels: map[string]string{"app": "cache"}},
		Spec: corev1.PodSpec{
			NodeName:                      testNode,
			ServiceAccountName:            "app",
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "redis", Image: "redis:7.4", Command: []string{"redis-server"},
				Args:  []string{"--dir", "/data", "--appendonly", "no", "--save", ""},
				Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("redis")}},
					PeriodSeconds: 1,
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: "/data"},
					{Name: "kube-api-access", MountPath: serviceAccountMountPath, ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To[int32](0o644),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "test-audience", ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{
							LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
						}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
						}}},
					},
				}}},
			},
		},
	}
}

// ping sends a Redis PING to addr and returns the reply line.
func ping(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRunner_RunsThePodsBoundToItsNode(t *testing.T) {
	ctx := context.Background()
	cl, err := client.New(testEnv, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := "runner-pods"
	createObjects(t, cl, podNamespace(ns, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "cache"},
		Ports:    []corev1.ServicePort{{Name: "redis", Port: 6379, TargetPort: intstr.FromString("redis")}},
	}})...)
	r, stop := startRunner(t)

	// A ready Node with a fresh Lease, as the node lifecycle controller wants it.
	var node corev1.Node
	if err := cl.Get(ctx, types.NamespacedName{Name: testNode}, &node); err != nil {
		t.Fatal(err)
	}
	if c := nodeCondition(node, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue || node.Spec.PodCIDR == "" {
		t.Fatalf("node %s: Ready %+v, podCIDR %q", testNode, c, node.Spec.PodCIDR)
	}
	var lease coordinationv1.Lease
	if err := cl.Get(ctx, types.NamespacedName{Namespace: nodeLeaseNamespace, Name: testNode}, &lease); err != nil || lease.Spec.RenewTime == nil {
		t.Fatalf("node lease: %+v %v", lease.Spec, err)
	}

	// A pod bound to another node is not this runner's.
	other := redisPod(ns)
	other.Name, other.Spec.NodeName = "elsewhere", "another-node"
	if err := cl.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, redisPod(ns)); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	poll.Until(t, 30*time.Second, "pod Running and Ready in its status", func() error {
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "cache-0"}, &pod); err != nil {
			return err
		}
		if pod.Status.Phase != corev1.PodRunning || !podConditionTrue(pod, corev1.PodReady) || !podConditionTrue(pod, corev1.PodInitialized) {
			return fmt.Errorf("status %+v", pod.Status)
		}
		return nil
	})
	if _, cidr, _ := net.ParseCIDR(node.Spec.PodCIDR); !cidr.Contains(net.ParseIP(pod.Status.PodIP)) {
		t.Errorf("pod IP %q is not in the node's pod CIDR %s", pod.Status.PodIP, node.Spec.PodCIDR)
	}
	if cs := pod.Status.ContainerStatuses; len(cs) != 1 || !cs[0].Ready || cs[0].State.Running == nil {
		t.Errorf("container statuses %+v", cs)
	}
	for _, p := range r.Pods() {
		if p.Name == "elsewhere" {
			t.Error("the runner runs a pod bound to another node")
		}
	}

	// The projected service-account volume: a token from the TokenRequest API with the
	// audience asked for, bound to the pod, the cluster CA and the namespace.
	info := r.Pods()[0]
	sa := info.Containers[0].Mounts[serviceAccountMountPath]
	tok, err := os.ReadFile(filepath.Join(sa, "token"))
	if err != nil {
		t.Fatal(err)
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: string(tok), Audiences: []string{"test-audience"}}}
	if err := cl.Create(ctx, review); err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":app" ||
		strings.Join(review.Status.User.Extra["authentication.kubernetes.io/pod-name"], "") != "cache-0" {
		t.Errorf("token review: %+v", review.Status)
	}
	if ca, _ := os.ReadFile(filepath.Join(sa, "ca.crt")); !bytes.Equal(ca, testEnv.CAData) {
		t.Error("ca.crt is not the kube-root-ca.crt ConfigMap's")
	}
	if got, _ := os.ReadFile(filepath.Join(sa, "namespace")); string(got) != ns {
		t.Errorf("namespace file = %q", got)
	}
	env := map[string]string{}
	for _, e := range info.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if api, _ := url.Parse(testEnv.Host); env["KUBERNETES_SERVICE_HOST"] != api.Hostname() || env["KUBERNETES_SERVICE_PORT"] != api.Port() {
		t.Errorf("KUBERNETES_SERVICE_HOST/PORT = %q/%q, want the API server %s", env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"], testEnv.Host)
	}
	if kc, err := os.ReadFile(env["KUBECONFIG"]); err != nil || !strings.Contains(string(kc), filepath.Join(sa, "token")) {
		t.Errorf("KUBECONFIG %q does not read the projected token: %v", env["KUBECONFIG"], err)
	}

	// The Service reaches the pod through the EndpointSlice (written here as the
	// EndpointSlice controller would) and nothing else.
	addr, ok := r.ServiceAddr(ns, "cache", 6379)
	if !ok {
		t.Fatal("no local address for Service cache:6379")
	}
	if reply, err := ping(addr); err == nil && reply == "+PONG" {
		t.Fatal("the Service answered before it had an EndpointSlice")
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "cache-x1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "cache"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("redis"), Port: ptr.To[int32](6379), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{pod.Status.PodIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID},
		}},
	}
	if err := cl.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "PING through the Service", func() error {
		reply, err := ping(addr)
		if err != nil || reply != "+PONG" {
			return fmt.Errorf("%q %w", reply, err)
		}
		return nil
	})

	// A killed container is restarted, and its status shows the restart and the last exit.
	pid := info.Containers[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "restart in the pod's status", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(&pod), &pod); err != nil {
			return err
		}
		cs := pod.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].RestartCount != 1 || cs[0].LastTerminationState.Terminated == nil ||
			cs[0].LastTerminationState.Terminated.ExitCode != 128+int32(syscall.SIGKILL) || !cs[0].Ready {
			return fmt.Errorf("container statuses %+v", cs)
		}
		return nil
	})

	// A claim gets a volume pre-bound to it, for kube-controller-manager to bind.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if err := cl.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "volume provisioned", func() error {
		var pv corev1.PersistentVolume
		if err := cl.Get(ctx, types.NamespacedName{Name: "pvc-" + string(pvc.UID)}, &pv); err != nil {
			return err
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID || pv.Spec.HostPath == nil {
			return fmt.Errorf("volume %+v", pv.Spec)
		}
		if _, err := os.Stat(pv.Spec.HostPath.Path); err != nil {
			return err
		}
		return nil
	})

	// A graceful deletion stops the processes, then the runner deletes the Pod for good.
	pid = r.Pods()[0].Containers[0].PID
	if err := cl.Delete(ctx, &pod, client.GracePeriodSeconds(5)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "pod deleted", func() error {
		err := cl.Get(ctx, client.ObjectKeyFromObject(&pod), &corev1.Pod{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod still there (%w)", err)
		}
		return nil
	})
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still runs after its pod was deleted", pid)
	}

	// Shutdown stops every process the runner started.
	if err := cl.Create(ctx, redisPod(ns)); err != nil {
		t.Fatal(err)
	}
	var pids []int
	poll.Until(t, 30*time.Second, "replacement running", func() error {
		pids = nil
		for _, p := range r.Pods() {
			for _, c := range p.Containers {
				if c.PID != 0 {
					pids = append(pids, c.PID)
				}
			}
		}
		if len(pids) == 0 {
			return errors.New("no process yet")
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("stopping the runner: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after shutdown", pid)
		}
	}
}

// podNamespace is namespace ns with what redisPod needs in it (its ServiceAccount, the
// root CA ConfigMap), then more.
func podNamespace(ns string, more ...client.Object) []client.Object {
	return append([]client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}},
		// What kube-controller-manager's root-CA publisher writes in every namespace.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: ns}, Data: map[string]string{"ca.crt": string(testEnv.CAData)}},
	}, more...)
}

func createObjects(t *testing.T, cl client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cl.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func nodeCondition(n corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func podConditionTrue(p corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
