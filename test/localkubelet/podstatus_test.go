package localkubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func condition(st corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestPodStatus_WaitingThenRunningThenRestarted(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	scheduled := corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}

	waiting := podStatus(scheduled, podSnapshot{
		ip: "10.244.0.7", hostIP: "127.0.0.1", createdAt: created, waiting: `secret "keys": volume source not found`,
		containers: []containerSnapshot{{name: "server", image: "img"}},
	})
	if waiting.Phase != corev1.PodPending || waiting.PodIP != "10.244.0.7" || waiting.StartTime == nil {
		t.Fatalf("waiting pod: %+v", waiting)
	}
	if c := condition(waiting, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue {
		t.Error("the scheduler's PodScheduled condition was dropped")
	}
	if c := condition(waiting, corev1.PodReadyToStartContainers); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("PodReadyToStartContainers = %+v", c)
	}
	if w := waiting.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" || w.Message == "" {
		t.Errorf("waiting container state %+v", waiting.ContainerStatuses[0].State)
	}

	started := created.Add(2 * time.Second)
	running := podStatus(waiting, podSnapshot{
		ip: "10.244.0.7", hostIP: "127.0.0.1", createdAt: created, prepared: true, initialized: true,
		containers: []containerSnapshot{{name: "server", image: "img", running: true, ready: true, startedAt: started}},
	})
	if running.Phase != corev1.PodRunning || !running.StartTime.Equal(waiting.StartTime) {
		t.Fatalf("running pod: phase %s, start %v (was %v)", running.Phase, running.StartTime, waiting.StartTime)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if c := condition(running, ct); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("%s = %+v", ct, c)
		}
	}
	cs := running.ContainerStatuses[0]
	if !cs.Ready || cs.Started == nil || !*cs.Started || cs.State.Running == nil || !cs.State.Running.StartedAt.Equal(&metav1.Time{Time: started}) {
		t.Errorf("running container status %+v", cs)
	}

	// Unchanged, nothing moves: a status written again is equal, so it is not rewritten.
	readyAt := condition(running, corev1.PodReady).LastTransitionTime
	again := podStatus(running, podSnapshot{
		ip: "10.244.0.7", hostIP: "127.0.0.1", createdAt: created, prepared: true, initialized: true,
		containers: []containerSnapshot{{name: "server", image: "img", running: true, ready: true, startedAt: started}},
	})
	if c := condition(again, corev1.PodReady); !c.LastTransitionTime.Equal(&readyAt) {
		t.Error("an unchanged Ready condition got a new transition time")
	}

	// Killed by SIGKILL and waiting for its restart back-off.
	exit := exitRecord{code: 137, reason: "Error", startedAt: started, finishedAt: started.Add(time.Minute)}
	crashed := podStatus(running, podSnapshot{
		ip: "10.244.0.7", hostIP: "127.0.0.1", createdAt: created, prepared: true, initialized: true,
		containers: []containerSnapshot{{name: "server", image: "img", restarts: 1, last: exit}},
	})
	cs = crashed.ContainerStatuses[0]
	if cs.Ready || cs.RestartCount != 1 || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
		t.Errorf("crashed container status %+v", cs)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 || lt.Reason != "Error" {
		t.Errorf("last termination %+v", cs.LastTerminationState)
	}
	if c := condition(crashed, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady" {
		t.Errorf("Ready of a crashed pod = %+v", c)
	}
	if crashed.Phase != corev1.PodRunning {
		t.Errorf("a pod whose container ran once stays Running while it restarts, got %s", crashed.Phase)
	}
}

func TestPodStatus_InitContainers(t *testing.T) {
	s := podSnapshot{
		ip: "10.244.0.8", hostIP: "127.0.0.1", createdAt: time.Now(), prepared: true,
		initContainers: []containerSnapshot{{name: "setup", image: "img", running: true}},
		containers:     []containerSnapshot{{name: "server", image: "img"}},
	}
	st := podStatus(corev1.PodStatus{}, s)
	if st.Phase != corev1.PodPending || condition(st, corev1.PodInitialized).Status != corev1.ConditionFalse {
		t.Errorf("pod with a running init container: %s, %+v", st.Phase, condition(st, corev1.PodInitialized))
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("main container while initializing: %+v", st.ContainerStatuses[0].State)
	}
	s.initContainers = []containerSnapshot{{name: "setup", image: "img", completed: true, last: exitRecord{code: 0, reason: "Completed", finishedAt: time.Now()}}}
	s.initialized = true
	st = podStatus(st, s)
	if term := st.InitContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" || term.ExitCode != 0 {
		t.Errorf("completed init container: %+v", st.InitContainerStatuses[0].State)
	}
}

func TestIPPool_HandsOutEachAddressOnceAndReusesReleasedOnes(t *testing.T) {
	pool, err := newIPPool("10.244.0.0/30")
	if err != nil {
		t.Fatal(err)
	}
	first, err := pool.allocate()
	if err != nil || first.String() != "10.244.0.2" {
		t.Fatalf("first address %v %v; want 10.244.0.2 (network and the node's .1 skipped)", first, err)
	}
	if _, err := pool.allocate(); err == nil {
		t.Fatal("a /30 has one pod address beside the node's; a second was handed out")
	}
	pool.release(first)
	if again, err := pool.allocate(); err != nil || !again.Equal(first) {
		t.Errorf("released address not reused: %v %v", again, err)
	}
	if _, err := newIPPool("fd00::/64"); err == nil {
		t.Error("an IPv6 pod CIDR was accepted")
	}
}

func TestIssuedToken_RenewedAfter80PercentOfItsLife(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok := issuedToken{token: "t", issuedAt: issued, expiry: issued.Add(time.Hour)}
	if tok.due(issued.Add(47 * time.Minute)) {
		t.Error("due at 78% of its lifetime")
	}
	if !tok.due(issued.Add(49 * time.Minute)) {
		t.Error("not due at 82% of its lifetime")
	}
	if !(issuedToken{}).due(issued) {
		t.Error("no token yet is not due")
	}
}

func TestVolumeForClaim_PreBoundHostPathVolume(t *testing.T) {
	class := "fast"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-redis-0", Namespace: "ns", UID: "uid-1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: mustQuantity("2Gi")}},
		},
	}
	pv := volumeForClaim(pvc, "/w/volumes/pvc-uid-1")
	ref := pv.Spec.ClaimRef
	if pv.Name != "pvc-uid-1" || ref == nil || ref.Namespace != "ns" || ref.Name != "data-redis-0" || ref.UID != "uid-1" {
		t.Errorf("claim reference %+v of %s", ref, pv.Name)
	}
	if pv.Spec.StorageClassName != "fast" || pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != "/w/volumes/pvc-uid-1" ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Annotations[provisionedByAnnotation] != ProvisionerName {
		t.Errorf("volume %+v %v", pv.Spec, pv.Annotations)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" {
		t.Errorf("capacity %s", got.String())
	}
}

func TestDownwardAPIFiles(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "ns", Labels: map[string]string{"b": "2", "a": `x"y`},
	}}
	files, err := downwardAPIFiles(pod, []corev1.DownwardAPIVolumeFile{
		{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(files["namespace"].Data) != "ns" || string(files["labels"].Data) != "a=\"x\\\"y\"\nb=\"2\"" {
		t.Errorf("files %q %q", files["namespace"].Data, files["labels"].Data)
	}
	if _, err := downwardAPIFiles(pod, []corev1.DownwardAPIVolumeFile{{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}, nil); err == nil {
		t.Error("a resourceFieldRef, which is not emulated, was accepted")
	}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
