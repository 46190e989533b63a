package redistopology

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/loopback"
)

// TestElection_AnEmptyPod0FollowsThePodWithARecord: pod 0, whose volume is empty, elects
// pod 1, which told it a record (its start gate serving it on loopback), not itself; an
// asker with the wrong password hears nothing.
func TestElection_AnEmptyPod0FollowsThePodWithARecord(t *testing.T) {
	const pw = "0123456789abcdef0123456789abcdef"
	ln, err := net.Listen("tcp", loopback.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveRecord(ln, Own{Record: &Record{ReplID: strings.Repeat("a", 40), Offset: 9, Time: time.Now()}, HasData: true}, pw)
	}()
	t.Cleanup(func() { ln.Close(); <-served })
	pod1 := ln.Addr().String()
	if a := askPeer(context.Background(), pod1, "", "wrong-password-0123456789", time.Second); a.kind != peerSilent {
		t.Errorf("asked with the wrong password, pod 1 answered %+v", a)
	}
	pod0 := loopback.FreeAddr(t)
	got, err := Election{Self: pod0, Members: []string{pod0, pod1}, Listen: pod0, Password: pw,
		Wait: 10 * time.Second, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond}.Run(context.Background())
	if err != nil || got != pod1 {
		t.Errorf("pod 0 elected %q (%v), want pod 1 %s", got, err, pod1)
	}
}

func TestHeard_ASentinelOrARunningPrimaryAmongTheMembers(t *testing.T) {
	members := []string{"r-0:6379", "r-1:6379"}
	for _, tc := range []struct {
		o    Observation
		want bool
	}{
		{Observation{}, false},
		{Observation{SentinelAnswers: []string{"evil:6379"}}, false},
		{Observation{SentinelAnswers: []string{"r-1:6379"}}, true},
		{Observation{Masters: []string{"r-0:6379"}}, true},
	} {
		if got := Heard(tc.o, members); got != tc.want {
			t.Errorf("Heard(%+v) = %v, want %v", tc.o, got, tc.want)
		}
	}
}
