package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

func TestFlags_DefaultsAreTheDocumentedOnes(t *testing.T) {
	t.Setenv("AUTHSERVER_IMAGE", "registry.example.com/auth-operator:v1")
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	bindFlags(fs, &o)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := options{
		metricsAddr: ":8443", secureMetrics: true, probeAddr: ":8081", leaderElect: false,
		authserverImage: "registry.example.com/auth-operator:v1", maxConcurrentReconciles: 4,
		minKeyPublishTime: 5 * time.Minute,
	}
	if o != want {
		t.Fatalf("defaults = %+v, want %+v", o, want)
	}
	if err := fs.Parse([]string{"--metrics-bind-address=0", "--leader-elect", "--authserver-image=img:2"}); err != nil {
		t.Fatal(err)
	}
	if o.metricsAddr != "0" || !o.leaderElect || o.authserverImage != "img:2" {
		t.Fatalf("parsed = %+v", o)
	}
	if err := o.validate(); err != nil {
		t.Fatalf("the defaults are rejected: %v", err)
	}
}

func TestFlags_MinKeyPublishTimeBelowOneSecondIsRejected(t *testing.T) {
	cases := []struct {
		arg     string
		want    time.Duration
		wantErr bool
	}{
		{"--min-key-publish-time=3s", 3 * time.Second, false},
		{"--min-key-publish-time=1s", time.Second, false},
		{"--min-key-publish-time=999ms", 999 * time.Millisecond, true},
		{"--min-key-publish-time=0", 0, true},
		{"--min-key-publish-time=-5m", -5 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.arg, func(t *testing.T) {
			var o options
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			bindFlags(fs, &o)
			if err := fs.Parse([]string{tc.arg}); err != nil {
				t.Fatal(err)
			}
			if o.minKeyPublishTime != tc.want {
				t.Fatalf("minKeyPublishTime = %s, want %s", o.minKeyPublishTime, tc.want)
			}
			err := o.validate()
			if tc.wantErr && (err == nil || !strings.Contains(err.Error(), "--min-key-publish-time must be at least 1s")) {
				t.Fatalf("validate() = %v, want the 1s floor named", err)
			}
			if !tc.wantErr && err != nil {
				t.Fatalf("validate() = %v", err)
			}
		})
	}
}

// TestRun_ServesProbesElectsALeaderAndReconciles runs the manager as main does, against a
// real API server: probes answer, the metrics endpoint refuses anonymous callers, the Lease
// is taken, and an AuthService gets its auth server from the configured image.
func TestRun_ServesProbesElectsALeaderAndReconciles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd: not in -short")
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", "bin")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest with binaries from %s (run `make controlplane`): %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	probeAddr, metricsAddr := loopback.FreeAddr(t), loopback.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, options{
			metricsAddr: metricsAddr, secureMetrics: true, probeAddr: probeAddr,
			leaderElect: true, leaderElectionNamespace: "default",
			authserverImage: "registry.example.com/auth-operator:v1", maxConcurrentReconciles: 2,
			minKeyPublishTime: 3 * time.Second,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after its context ended", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30s of its context ending")
		}
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		poll.Until(t, 30*time.Second, "probe "+path, func() error {
			resp, err := http.Get("http://" + probeAddr + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	poll.Until(t, 30*time.Second, "metrics refuse anonymous callers", func() error {
		resp, err := insecure.Get("https://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	poll.Until(t, 30*time.Second, "leader Lease", func() error {
		lease := &coordinationv1.Lease{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "auth-operator.auth.hiringo.tech"}, lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Errorf("no holder")
		}
		return nil
	})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "auth"}}
	if err := c.Create(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "auth-server Deployment from the configured image", func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns.Name, Name: "auth-authserver"}, d); err != nil {
			return err
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/auth-operator:v1" {
			return fmt.Errorf("image %s", got)
		}
		return nil
	})
}
