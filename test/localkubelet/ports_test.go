package localkubelet

import (
	"net"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPortFor_APodWithADNSNameKeepsItsPortsAcrossReplacements checks that the pod that
// replaces a StatefulSet pod gets the loopback port of its name, which the other pods'
// configuration holds, while a pod without a DNS name gets a port of its own.
func TestPortFor_APodWithADNSNameKeepsItsPortsAcrossReplacements(t *testing.T) {
	r := &Runner{namedPorts: map[string]int{}}
	named := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "redis-0"},
			Spec:       corev1.PodSpec{Hostname: "redis-0", Subdomain: "redis-headless"},
		}
	}
	first, err := r.portForLocked(named(), 6379)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.portForLocked(named(), 6379)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("the replacing pod got port %d, its name had %d", again, first)
	}
	other, err := r.portForLocked(named(), 26379)
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Fatalf("another container port got the same loopback port %d", other)
	}

	// While no pod of that name runs (between a pod and its replacement), the name
	// resolves to the port the replacement gets; a name never seen does not resolve.
	addr, ok := r.resolveServiceLocked(ServiceRef{Namespace: "ns", Name: "redis-headless", Pod: "redis-0", Port: 6379})
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(first)); !ok || addr != want {
		t.Fatalf("redis-0's name between its pods resolves to %q (%v), want %s", addr, ok, want)
	}
	if addr, ok := r.resolveServiceLocked(ServiceRef{Namespace: "ns", Name: "redis-headless", Pod: "redis-1", Port: 6379}); ok {
		t.Fatalf("the name of a pod never prepared resolves to %s", addr)
	}

	// A port taken meanwhile by another process is not handed out: the pod gets a new one.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	moved, err := r.portForLocked(named(), 6379)
	if err != nil {
		t.Fatal(err)
	}
	if moved == first {
		t.Fatalf("port %d is in use and was handed out again", first)
	}

	unnamed := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "authserver-abc"}}
	a, err := r.portForLocked(unnamed, 8080)
	if err != nil {
		t.Fatal(err)
	}
	// Its successor runs beside it for a while (a Deployment's surge): ports of their own.
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	b, err := r.portForLocked(unnamed, 8080)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("a pod without a DNS name got the port %d its predecessor holds", a)
	}
	if len(r.namedPorts) != 2 {
		t.Fatalf("named ports recorded: %v, want the two of redis-0", r.namedPorts)
	}
}
