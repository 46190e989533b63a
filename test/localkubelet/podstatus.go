package localkubelet

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podSnapshot is what the runner knows of a pod when it writes the pod's status.
type podSnapshot struct {
	ip        string
	hostIP    string
	createdAt time.Time
	// prepared is set once the volumes are materialised and the processes may start;
	// waiting says what the pod waits for until then.
	prepared       bool
	waiting        string
	initialized    bool
	initContainers []containerSnapshot
	containers     []containerSnapshot
}

// containerSnapshot is one container's state.
type containerSnapshot struct {
	name      string
	image     string
	running   bool
	ready     bool
	restarts  int
	startedAt time.Time
	last      exitRecord
	completed bool
}

func (s containerSnapshot) everStarted() bool { return s.running || !s.last.finishedAt.IsZero() }

// podStatus is the status the kubelet would write for the snapshot: phase, addresses,
// the PodReadyToStartContainers, Initialized, ContainersReady and Ready conditions (other
// conditions, such as the scheduler's PodScheduled, are kept), and the container
// statuses. A condition keeps its transition time while its status stays.
func podStatus(old corev1.PodStatus, s podSnapshot) corev1.PodStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	st := *old.DeepCopy()
	st.HostIP = s.hostIP
	st.HostIPs = []corev1.HostIP{{IP: s.hostIP}}
	st.PodIP = s.ip
	st.PodIPs = []corev1.PodIP{{IP: s.ip}}
	st.StartTime = ptr.To(metav1.NewTime(s.createdAt.Truncate(time.Second)))
	if old.StartTime != nil {
		st.StartTime = old.StartTime
	}

	allReady, allStarted := len(s.containers) > 0, len(s.containers) > 0
	for _, c := range s.containers {
		allReady = allReady && c.ready
		allStarted = allStarted && c.everStarted()
	}
	st.Phase = corev1.PodPending
	if s.initialized && allStarted {
		st.Phase = corev1.PodRunning
	}

	setCondition(&st, corev1.PodReadyToStartContainers, s.prepared, "", now)
	initReason := ""
	if !s.initialized {
		initReason = "ContainersNotInitialized"
	}
	setCondition(&st, corev1.PodInitialized, s.initialized, initReason, now)
	readyReason := ""
	if !allReady {
		readyReason = "ContainersNotReady"
	}
	setCondition(&st, corev1.ContainersReady, allReady, readyReason, now)
	setCondition(&st, corev1.PodReady, allReady, readyReason, now)

	st.InitContainerStatuses = containerStatuses(old.InitContainerStatuses, s.initContainers, s, true)
	st.ContainerStatuses = containerStatuses(old.ContainerStatuses, s.containers, s, false)
	return st
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason = status, reason
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}

// containerStatuses writes one status per container of the snapshot, in the spec's order.
func containerStatuses(old []corev1.ContainerStatus, cs []containerSnapshot, s podSnapshot, init bool) []corev1.ContainerStatus {
	if len(cs) == 0 {
		return old
	}
	out := make([]corev1.ContainerStatus, len(cs))
	for i, c := range cs {
		cst := corev1.ContainerStatus{
			Name: c.name, Image: c.image, ImageID: "localkubelet://" + c.image,
			Ready: c.ready, RestartCount: int32(c.restarts), Started: ptr.To(c.running),
		}
		switch {
		case c.running:
			cst.ContainerID = "localkubelet://" + c.name
			cst.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt.Truncate(time.Second))}
		case init && c.completed:
			cst.State.Terminated = terminated(c.last)
		case !s.prepared:
			cst.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: s.waiting}
		case !init && !s.initialized:
			cst.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		case c.last.finishedAt.IsZero():
			cst.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		default:
			cst.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting failed container " + c.name}
		}
		if !c.last.finishedAt.IsZero() && cst.State.Terminated == nil {
			cst.LastTerminationState.Terminated = terminated(c.last)
		}
		out[i] = cst
	}
	return out
}

func terminated(e exitRecord) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: e.code, Reason: e.reason,
		StartedAt: metav1.NewTime(e.startedAt.Truncate(time.Second)), FinishedAt: metav1.NewTime(e.finishedAt.Truncate(time.Second)),
	}
}
