package localkubelet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// servicePortProxy stands for one port of a Service: a loopback listener that forwards
// each connection to one of the ready endpoints of the Service's EndpointSlices, in turn,
// as kube-proxy would. A connection that a backend refuses is tried on the next one, as
// kube-proxy's userspace mode did.
type servicePortProxy struct {
	svcKey    string
	port      corev1.ServicePort
	ln        net.Listener
	endpoints func() []string
	next      atomic.Uint64
	log       *slog.Logger
	wg        sync.WaitGroup
	closeOnce sync.Once
	conns     sync.Map
}

func newServicePortProxy(svcKey string, port corev1.ServicePort, endpoints func() []string, log *slog.Logger) (*servicePortProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &servicePortProxy{svcKey: svcKey, port: port, ln: ln, endpoints: endpoints, log: log}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the loopback address of the proxy.
func (p *servicePortProxy) Addr() string { return p.ln.Addr().String() }

func (p *servicePortProxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Error("service proxy accept failed", "service", p.svcKey, "err", err)
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(conn)
		}()
	}
}

func (p *servicePortProxy) forward(in net.Conn) {
	p.conns.Store(in, struct{}{})
	defer p.conns.Delete(in)
	defer in.Close()
	eps := p.endpoints()
	if len(eps) == 0 {
		return
	}
	first := int(p.next.Add(1)-1) % len(eps)
	d := net.Dialer{Timeout: 2 * time.Second}
	var out net.Conn
	for i := range eps {
		var err error
		if out, err = d.DialContext(context.Background(), "tcp", eps[(first+i)%len(eps)]); err == nil {
			break
		}
	}
	if out == nil {
		return
	}
	p.conns.Store(out, struct{}{})
	defer p.conns.Delete(out)
	defer out.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// Close stops the listener and every forwarded connection.
func (p *servicePortProxy) Close() {
	p.closeOnce.Do(func() {
		_ = p.ln.Close()
		p.conns.Range(func(k, _ any) bool {
			_ = k.(net.Conn).Close()
			return true
		})
		p.wg.Wait()
	})
}
