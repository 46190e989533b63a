package localkubelet

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestBuildLaunch_ResolvesEnvExpandsArgsAndRemaps(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns"},
		Data:       map[string][]byte{"user": []byte("alice")},
	}).Build()
	resolve := func(ref ServiceRef) (string, bool) {
		if ref == (ServiceRef{Namespace: "ns", Name: "demo-redis", Port: 6379}) {
			return "127.0.0.1:40001", true
		}
		return "", false
	}
	c := corev1.Container{
		Name: "authserver", Image: "op:1", Command: []string{"/authserver", "serve"},
		Args:  []string{"--keys-dir=$(KEYS)", "--user=$(USER)", "$$(KEYS)"},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 8081}},
		Env: []corev1.EnvVar{
			{Name: "KEYS", Value: "/etc/authserver/keys"},
			{Name: "AUTHSERVER_REDIS_ADDRS", Value: "demo-redis.ns.svc:6379"},
			{Name: "USER", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "user"}}},
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "TEAM", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['team']"}}},
			{Name: "GREETING", Value: "hello $(POD)"},
			{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "x", Optional: ptr.To(true)}}},
		},
	}
	l, err := buildLaunch(context.Background(), launchInputs{
		Pod:       podIdentity{Namespace: "ns", Name: "demo-authserver-abc-12345", Labels: map[string]string{"team": "auth"}},
		Container: c,
		Mounts:    []PathMapping{{ContainerPath: "/etc/authserver/keys", LocalPath: "/w/keys"}},
		Ports:     map[int32]int{8080: 41000, 8081: 41001},
		Images:    DefaultImages("op:1", "/bin/authserver", "/bin/redis-server"),
		Services:  resolve,
		Reader:    reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Path != "/bin/authserver" {
		t.Errorf("path = %q", l.Path)
	}
	if want := []string{"serve", "--keys-dir=/w/keys", "--user=alice", "$(KEYS)"}; !reflect.DeepEqual(l.Args, want) {
		t.Errorf("args = %q, want %q", l.Args, want)
	}
	env := map[string]string{}
	for _, e := range l.Env {
		env[e.Name] = e.Value
	}
	for name, want := range map[string]string{
		"PATH":                    os.Getenv("PATH"),
		"HOSTNAME":                "demo-authserver-abc-12345",
		"KEYS":                    "/w/keys",
		"AUTHSERVER_REDIS_ADDRS":  "127.0.0.1:40001",
		"USER":                    "alice",
		"POD":                     "demo-authserver-abc-12345",
		"TEAM":                    "auth",
		"GREETING":                "hello demo-authserver-abc-12345",
		"AUTHSERVER_LISTEN":       "127.0.0.1:41000",
		"AUTHSERVER_ADMIN_LISTEN": "127.0.0.1:41001",
	} {
		if env[name] != want {
			t.Errorf("env %s = %q, want %q", name, env[name], want)
		}
	}
	if _, ok := env["OPTIONAL"]; ok {
		t.Error("an absent optional secretKeyRef set its variable")
	}
}

func TestBuildLaunch_ClearErrors(t *testing.T) {
	reader := fake.NewClientBuilder().Build()
	base := launchInputs{
		Pod:      podIdentity{Namespace: "ns", Name: "p"},
		Images:   DefaultImages("op:1", "/bin/authserver", "/bin/redis-server"),
		Services: func(ServiceRef) (string, bool) { return "", false },
		Reader:   reader,
	}
	for _, tc := range []struct {
		name string
		c    corev1.Container
		want string
	}{
		{"unknown image", corev1.Container{Name: "x", Image: "nginx:1"}, `image "nginx:1"`},
		{"missing secret", corev1.Container{Name: "x", Image: "op:1", Command: []string{"/authserver"}, Env: []corev1.EnvVar{{
			Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}},
		}}}, `secret "gone"`},
		{"service not there yet", corev1.Container{Name: "x", Image: "op:1", Command: []string{"/authserver"}, Env: []corev1.EnvVar{{
			Name: "AUTHSERVER_REDIS_ADDRS", Value: "demo-redis:6379",
		}}}, "ns/demo-redis port 6379 is not known"},
	} {
		in := base
		in.Container = tc.c
		if _, err := buildLaunch(context.Background(), in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestProjectKeys(t *testing.T) {
	data := map[string][]byte{"password": []byte("pw"), "redis.conf": []byte("requirepass pw\n")}
	files, err := projectKeys(data, []corev1.KeyToPath{{Key: "redis.conf", Path: "redis.conf"}}, ptr.To[int32](0o440), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || string(files["redis.conf"].Data) != "requirepass pw\n" || files["redis.conf"].Mode != 0o440 {
		t.Errorf("files = %+v", files)
	}
	all, err := projectKeys(data, nil, nil, false)
	if err != nil || len(all) != 2 || all["password"].Mode != 0o644 {
		t.Errorf("all keys: %+v %v", all, err)
	}
	if _, err := projectKeys(data, []corev1.KeyToPath{{Key: "missing", Path: "m"}}, nil, false); err == nil {
		t.Error("a missing item key was accepted")
	}
	if files, err := projectKeys(data, []corev1.KeyToPath{{Key: "missing", Path: "m"}}, nil, true); err != nil || len(files) != 0 {
		t.Errorf("optional missing item: %+v %v", files, err)
	}
}
