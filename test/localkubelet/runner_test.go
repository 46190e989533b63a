package localkubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/tokentest"
	"github.com/hiringo/auth-operator/internal/poll"
)

const testImage = "example.test/auth-operator:test"

func labelsFor(name, component string) map[string]string {
	return map[string]string{
		ManagedByLabel:                ManagedByValue,
		"app.kubernetes.io/name":      name,
		"app.kubernetes.io/instance":  "demo",
		"app.kubernetes.io/component": component,
	}
}

// demoObjects are hand-written objects wired as the operator wires an AuthService named
// demo: keys Secret, Redis password Secret, Redis StatefulSet and Service, auth-server
// Deployment and Service.
func demoObjects(ns string, keys keyfiles.Set) ([]client.Object, error) {
	keyFiles, err := keyfiles.Encode(keys)
	if err != nil {
		return nil, err
	}
	password := "test-password-0123456789"
	redisLabels := labelsFor("redis", "redis")
	serverLabels := labelsFor("authserver", "server")
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("admin")}},
			PeriodSeconds: 1, FailureThreshold: 3,
		}
	}
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	return []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-signing-keys", Namespace: ns, Labels: labelsFor("authserver", "signing-keys")},
			Data:       keyFiles,
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-redis", Namespace: ns, Labels: redisLabels},
			Data: map[string][]byte{
				"password":   []byte(password),
				"redis.conf": []byte("requirepass " + password + "\n"),
			},
		},
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-redis", Namespace: ns, Labels: redisLabels},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: redisLabels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: redisLabels},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{
							Name: "redis", Image: "redis:7.4-alpine",
							Command: []string{"redis-server", "/etc/redis/redis.conf", "--dir", "/data",
								"--appendonly", "yes", "--appendfsync", "$(APPENDFSYNC)", "--port", "6379"},
							Env:   []corev1.EnvVar{{Name: "APPENDFSYNC", Value: "always"}},
							Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("redis")}},
								PeriodSeconds: 1,
							},
							VolumeMounts: []corev1.VolumeMount{
								{Name: "config", MountPath: "/etc/redis", ReadOnly: true},
								{Name: "data", MountPath: "/data"},
							},
						}},
						Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: "demo-redis", Items: []corev1.KeyToPath{{Key: "redis.conf", Path: "redis.conf"}},
						}}}},
					},
				},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					},
				}},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-redis", Namespace: ns, Labels: redisLabels},
			Spec: corev1.ServiceSpec{Selector: redisLabels, Ports: []corev1.ServicePort{{
				Name: "redis", Port: 6379, TargetPort: intstr.FromString("redis"),
			}}},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-authserver", Namespace: ns, Labels: serverLabels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: serverLabels},
				Strategy: appsv1.DeploymentStrategy{
					Type:          appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one},
				},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: serverLabels},
					Spec: corev1.PodSpec{
						TerminationGracePeriodSeconds: ptr.To[int64](5),
						Containers: []corev1.Container{{
							Name: "authserver", Image: testImage, Command: []string{"/authserver", "serve"},
							Env: []corev1.EnvVar{
								{Name: "AUTHSERVER_KEYS_DIR", Value: "/etc/authserver/keys"},
								{Name: "AUTHSERVER_REDIS_ADDRS", Value: "demo-redis:6379"},
								{Name: "AUTHSERVER_REDIS_PASSWORD_FILE", Value: "/etc/authserver/redis/password"},
								{Name: "AUTHSERVER_SHUTDOWN_TIMEOUT", Value: "2s"},
							},
							Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 8081}},
							ReadinessProbe: probe("/readyz"),
							LivenessProbe:  probe("/healthz"),
							VolumeMounts: []corev1.VolumeMount{
								{Name: "keys", MountPath: "/etc/authserver/keys", ReadOnly: true},
								{Name: "redis-password", MountPath: "/etc/authserver/redis", ReadOnly: true},
							},
						}},
						Volumes: []corev1.Volume{
							{Name: "keys", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "demo-signing-keys"}}},
							{Name: "redis-password", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
								SecretName: "demo-redis", Items: []corev1.KeyToPath{{Key: "password", Path: "password"}},
							}}},
						},
					},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-authserver", Namespace: ns, Labels: serverLabels},
			Spec: corev1.ServiceSpec{Selector: serverLabels, Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"),
			}}},
		},
	}, nil
}

// call sends method to url with a bearer token and returns the status and body.
func call(method, url, token string) (int, string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// issueToken mints a token with the auth server's own command from a keys directory.
func issueToken(t *testing.T, keysDir string) string {
	t.Helper()
	out, err := exec.Command(authserverPath, "token", "issue", "--keys-dir", keysDir, "--ttl", "10m").Output()
	if err != nil {
		t.Fatalf("authserver token issue: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func podsOf(r *Runner, owner string) []PodInfo {
	var out []PodInfo
	for _, p := range r.Pods() {
		if p.OwnerName == owner && p.Phase != "Terminating" {
			out = append(out, p)
		}
	}
	return out
}

// startRunner runs a Runner for namespace ns until the test ends; the returned function
// stops it early and returns what Run returned.
func startRunner(t *testing.T, ns string) (*Runner, func() error) {
	t.Helper()
	var logs bytes.Buffer
	r, err := New(Config{
		RESTConfig: testEnv, WorkDir: t.TempDir(), Namespace: ns,
		Images: DefaultImages(testImage, authserverPath, redisPath),
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
	return r, stop
}

func TestRunner_RunsTheOperatorsWiringEndToEnd(t *testing.T) {
	ctx := context.Background()
	cl, err := client.New(testEnv, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := "runner-wiring"
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	keys := tokentest.NewSet(t)
	objs, err := demoObjects(ns, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	r, stop := startRunner(t, ns)

	// The workloads' status turns ready the way the controllers would report it.
	poll.Until(t, 60*time.Second, "Deployment available", func() error {
		var d appsv1.Deployment
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-authserver"}, &d); err != nil {
			return err
		}
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 || st.UpdatedReplicas != 2 {
			return fmt.Errorf("status %+v", st)
		}
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("no Available=True condition: %+v", st.Conditions)
	})
	var sts appsv1.StatefulSet
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-redis"}, &sts); err != nil {
		t.Fatal(err)
	}
	if sts.Status.ReadyReplicas != 1 || sts.Status.ObservedGeneration != sts.Generation {
		t.Fatalf("StatefulSet status %+v", sts.Status)
	}

	servers := podsOf(r, "demo-authserver")
	if len(servers) != 2 {
		t.Fatalf("want 2 auth-server pods, got %+v", servers)
	}
	keysDir := servers[0].Containers[0].Mounts["/etc/authserver/keys"]
	if target, err := os.Readlink(filepath.Join(keysDir, "..data")); err != nil || !strings.HasPrefix(target, "..") {
		t.Fatalf("keys dir %s is not in the kubelet layout: ..data -> %q (%v)", keysDir, target, err)
	}
	svcAddr, ok := r.ServiceAddr(ns, "demo-authserver", 80)
	if !ok {
		t.Fatal("no local address for Service demo-authserver:80")
	}

	// Logged out through one replica, rejected by the other: they share the Redis behind
	// the Service address the runner rewrote.
	tok := issueToken(t, keysDir)
	if code, body, err := call(http.MethodGet, "http://"+svcAddr+"/auth/verify", tok); err != nil || code != 200 {
		t.Fatalf("verify through the Service: %d %s %v", code, body, err)
	}
	a, b := servers[0].Containers[0].Ports[8080], servers[1].Containers[0].Ports[8080]
	if code, body, err := call(http.MethodPost, "http://"+a+"/auth/logout", tok); err != nil || code != 200 {
		t.Fatalf("logout on %s: %d %s %v", servers[0].Name, code, body, err)
	}
	if code, body, err := call(http.MethodPost, "http://"+b+"/auth/logout", tok); err != nil || code != 401 || !strings.Contains(body, "token is blacklisted") {
		t.Fatalf("second logout on the other replica: %d %s %v", code, body, err)
	}

	// A Secret update reaches the mounted directory by the ..data swap, and the running
	// server takes the new key without a restart.
	pidBefore := servers[0].Containers[0].PID
	oldTarget, _ := os.Readlink(filepath.Join(keysDir, "..data"))
	rotated := tokentest.Rotate(t, keys)
	files, err := keyfiles.Encode(rotated)
	if err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-signing-keys"}, &secret); err != nil {
		t.Fatal(err)
	}
	secret.Data = files
	if err := cl.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	newKid := tokentest.Active(t, rotated).ID
	poll.Until(t, 20*time.Second, "rotated key served", func() error {
		target, _ := os.Readlink(filepath.Join(keysDir, "..data"))
		if target == oldTarget {
			return errors.New("..data not swapped yet")
		}
		tok := issueToken(t, keysDir)
		if code, body, err := call(http.MethodGet, "http://"+a+"/auth/verify", tok); err != nil || code != 200 {
			return fmt.Errorf("verify with the new active key %s: %d %s %w", newKid, code, body, err)
		}
		return nil
	})
	if pid := podsOf(r, "demo-authserver")[0].Containers[0].PID; pid != pidBefore {
		t.Errorf("auth server restarted on a key update: pid %d -> %d", pidBefore, pid)
	}

	// SIGKILL Redis: the runner restarts it on the same claim directory, and the
	// revocation answered before the kill (appendfsync always) is still there.
	redis := podsOf(r, "demo-redis")
	if len(redis) != 1 {
		t.Fatalf("want one Redis pod, got %+v", redis)
	}
	redisPID := redis[0].Containers[0].PID
	if err := syscall.Kill(redisPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "Redis restarted and ready", func() error {
		p := podsOf(r, "demo-redis")
		if len(p) != 1 || p[0].Containers[0].Restarts < 1 || p[0].Containers[0].PID == redisPID || !p[0].Ready {
			return fmt.Errorf("redis pod %+v", p)
		}
		return nil
	})
	poll.Until(t, 20*time.Second, "revocation survives the Redis kill", func() error {
		code, body, err := call(http.MethodGet, "http://"+b+"/auth/verify", tok)
		if err != nil || code != 401 || !strings.Contains(body, "blacklisted") {
			return fmt.Errorf("verify of the logged-out token: %d %s %w", code, body, err)
		}
		return nil
	})

	// A changed pod template rolls the Deployment: new pods come up before old ones go.
	var dep appsv1.Deployment
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-authserver"}, &dep); err != nil {
		t.Fatal(err)
	}
	dep.Spec.Template.Annotations = map[string]string{"example.test/restartedAt": time.Now().Format(time.RFC3339)}
	if err := cl.Update(ctx, &dep); err != nil {
		t.Fatal(err)
	}
	oldNames := map[string]bool{servers[0].Name: true, servers[1].Name: true}
	poll.Until(t, 60*time.Second, "rollout complete", func() error {
		var d appsv1.Deployment
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-authserver"}, &d); err != nil {
			return err
		}
		if d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 || d.Status.Replicas != 2 {
			return fmt.Errorf("status %+v", d.Status)
		}
		for _, p := range r.Pods() {
			if oldNames[p.Name] {
				return fmt.Errorf("old pod %s still there (%s)", p.Name, p.Phase)
			}
		}
		return nil
	})

	// Scaling Redis to zero and back keeps its claim directory, so the blacklist survives.
	setRedisReplicas := func(n int32) {
		t.Helper()
		var s appsv1.StatefulSet
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo-redis"}, &s); err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = ptr.To(n)
		if err := cl.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	setRedisReplicas(0)
	poll.Until(t, 30*time.Second, "Redis pod gone", func() error {
		for _, p := range r.Pods() {
			if p.OwnerName == "demo-redis" {
				return fmt.Errorf("redis pod %s still %s", p.Name, p.Phase)
			}
		}
		return nil
	})
	setRedisReplicas(1)
	poll.Until(t, 30*time.Second, "revocation survives the Redis pod's replacement", func() error {
		addr, _ := r.ServiceAddr(ns, "demo-authserver", 80)
		code, body, err := call(http.MethodGet, "http://"+addr+"/auth/verify", tok)
		if err != nil || code != 401 || !strings.Contains(body, "blacklisted") {
			return fmt.Errorf("verify of the logged-out token: %d %s %w", code, body, err)
		}
		return nil
	})

	// Shutdown stops every process the runner started.
	var pids []int
	for _, p := range r.Pods() {
		for _, c := range p.Containers {
			if c.PID != 0 {
				pids = append(pids, c.PID)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stopping the runner: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after shutdown", pid)
		}
	}
}
