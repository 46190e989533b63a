package storestate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/storestate"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestRecorder_IssuerRecordsTheGenerationAndItsLoss runs the issuer's side against a
// real API server and Redis: the empty ConfigMap the operator created gets the
// generation; after FLUSHALL it records the loss (lostAt, previousGeneration,
// notBefore); an issuer started afterwards on an emptied store, holding what the
// ConfigMap recorded, finds that loss too, though every server was down when it
// happened.
func TestRecorder_IssuerRecordsTheGenerationAndItsLoss(t *testing.T) {
	kube := startKube(t)
	ctx := context.Background()
	const ns, name = "auth", "auth-store-state"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := storestate.Recorder{Client: kube, Namespace: ns, Name: name}
	srv := redistest.Start(t, redistest.Options{})

	issuer := startIssuer(t, srv, rec)
	first := waitFor(t, kube, ns, name, func(d map[string]string) bool { return d[authv1alpha1.StoreStateGenerationKey] != "" })
	if first[authv1alpha1.StoreStateLostAtKey] != "" || first[authv1alpha1.StoreStateNotBeforeKey] != "" || first[authv1alpha1.StoreStatePreviousGenerationKey] != "" {
		t.Fatalf("a fresh store recorded as lost: %v", first)
	}
	if _, err := redistest.Command(srv.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	lost := waitFor(t, kube, ns, name, func(d map[string]string) bool { return d[authv1alpha1.StoreStateLostAtKey] != "" })
	if lost[authv1alpha1.StoreStatePreviousGenerationKey] != first[authv1alpha1.StoreStateGenerationKey] || lost[authv1alpha1.StoreStateNotBeforeKey] == "" || lost[authv1alpha1.StoreStateGenerationKey] == first[authv1alpha1.StoreStateGenerationKey] {
		t.Fatalf("after FLUSHALL the ConfigMap holds %v; want the loss of %s", lost, first[authv1alpha1.StoreStateGenerationKey])
	}
	old := blacklist.Subject{UserID: "u", TokenID: "sig:old", IssuedAt: time.Now().Add(-time.Minute)}
	if listed, err := issuer.Check(ctx, old); err != nil || !listed {
		t.Fatalf("issuer: a token issued before the loss: listed %v, %v; want refused", listed, err)
	}
	issuer.stop()

	// Every server down, the store emptied again, then the issuer starts.
	if _, err := redistest.Command(srv.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	startIssuer(t, srv, rec)
	again := waitFor(t, kube, ns, name, func(d map[string]string) bool {
		return d[authv1alpha1.StoreStatePreviousGenerationKey] == lost[authv1alpha1.StoreStateGenerationKey]
	})
	if again[authv1alpha1.StoreStateNotBeforeKey] < lost[authv1alpha1.StoreStateNotBeforeKey] {
		t.Fatalf("the second loss moved the cutoff back: %v after %v", again, lost)
	}
}

// TestRecorder_AFutureCutoffWrittenIntoTheConfigMapIsNotHeld: whoever may write the store
// state ConfigMap could plant a cutoff far in the future, which would refuse every token,
// new logins included, until then; an issuer starting on it holds the generation without
// that cutoff, and a token issued now verifies.
func TestRecorder_AFutureCutoffWrittenIntoTheConfigMapIsNotHeld(t *testing.T) {
	kube := startKube(t)
	ctx := context.Background()
	const ns, name = "auth", "auth-store-state"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := storestate.Recorder{Client: kube, Namespace: ns, Name: name}
	srv := redistest.Start(t, redistest.Options{})
	first := startIssuer(t, srv, rec)
	recorded := waitFor(t, kube, ns, name, func(d map[string]string) bool { return d[authv1alpha1.StoreStateGenerationKey] != "" })
	first.stop()

	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[authv1alpha1.StoreStateNotBeforeKey] = time.Now().Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if _, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	issuer := startIssuer(t, srv, rec)
	fresh := blacklist.Subject{UserID: "u", TokenID: "sig:new", IssuedAt: time.Now()}
	if listed, err := issuer.Check(ctx, fresh); err != nil || listed {
		t.Fatalf("a token issued now, after a future cutoff was planted in %v: listed %v, %v; want accepted", recorded, listed, err)
	}
}

// runningIssuer is an issuer's store watching its generation into the ConfigMap.
type runningIssuer struct {
	*blacklist.Store
	stop func()
}

func startIssuer(t *testing.T, srv *redistest.Server, rec storestate.Recorder) runningIssuer {
	t.Helper()
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "state:"})
	t.Cleanup(s.Close)
	ctx, cancel := context.WithCancel(context.Background())
	held, err := rec.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Hold(held)
	record, recorded := rec.Start(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchGeneration(ctx, blacklist.GenerationOptions{Interval: 50 * time.Millisecond, OnChange: record})
	}()
	stop := func() {
		cancel()
		<-done
		<-recorded
	}
	t.Cleanup(stop)
	return runningIssuer{Store: s, stop: stop}
}

func waitFor(t *testing.T, kube kubernetes.Interface, ns, name string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	var data map[string]string
	poll.UntilTrue(t, 10*time.Second, "the ConfigMap to record the store state", func() bool {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		data = cm.Data
		return cond(data)
	})
	return data
}

func startKube(t *testing.T) kubernetes.Interface {
	t.Helper()
	if testing.Short() {
		t.Skip("starts kube-apiserver: not in -short")
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if abs, err := filepath.Abs("../../bin"); err == nil {
			t.Setenv("KUBEBUILDER_ASSETS", abs)
		}
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (KUBEBUILDER_ASSETS=%s): %v", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
