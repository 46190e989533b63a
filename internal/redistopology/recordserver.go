package redistopology

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// recordCommand is what an electing pod asks another for its record. A Redis that runs
// answers it with an unknown-command error, which tells the asker to ask INFO instead.
const recordCommand = "topology-record"

// Own is what an electing pod tells the others: its record, nil for none, and whether its
// volume holds data.
type Own struct {
	Record  *Record
	HasData bool
}

// encode is Own as the record command's reply: "v1 <0|1> <record or ->".
func (o Own) encode() string {
	data, rec := "0", "-"
	if o.HasData {
		data = "1"
	}
	if o.Record != nil {
		rec = strings.TrimSuffix(o.Record.Encode(), "\n")
	}
	return "v1 " + data + " " + rec
}

func decodeOwn(s string) (Own, error) {
	parts := strings.SplitN(s, " ", 3)
	if len(parts) != 3 || parts[0] != "v1" || (parts[1] != "0" && parts[1] != "1") {
		return Own{}, fmt.Errorf("unexpected record reply %q", s)
	}
	o := Own{HasData: parts[1] == "1"}
	if parts[2] != "-" {
		r, ok := DecodeRecord(parts[2])
		if !ok {
			return Own{}, fmt.Errorf("unexpected record %q", parts[2])
		}
		o.Record = &r
	}
	return o, nil
}

// serveRecord answers the record command on ln, in Redis's protocol (RESP2), to clients that
// authenticate with password, until ln is closed. It speaks only AUTH, PING, QUIT and the
// record command: the electing pod's Redis does not run yet, its port is free.
func serveRecord(ln net.Listener, own Own, password string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer conn.Close()
			serveRecordConn(conn, own, password)
		})
	}
}

func serveRecordConn(conn net.Conn, own Own, password string) {
	r := bufio.NewReader(conn)
	authed := password == ""
	for {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		args, err := readCommand(r)
		if err != nil {
			return
		}
		var reply string
		switch name := strings.ToLower(args[0]); {
		case name == "auth" && len(args) >= 2:
			authed = subtle.ConstantTimeCompare([]byte(args[len(args)-1]), []byte(password)) == 1
			reply = "+OK\r\n"
			if !authed {
				reply = "-WRONGPASS invalid username-password pair\r\n"
			}
		case name == "quit":
			_, _ = io.WriteString(conn, "+OK\r\n")
			return
		case !authed:
			reply = "-NOAUTH Authentication required.\r\n"
		case name == "ping":
			reply = "+PONG\r\n"
		case name == recordCommand:
			rec := own.encode()
			reply = fmt.Sprintf("$%d\r\n%s\r\n", len(rec), rec)
		default:
			reply = "-ERR this Redis pod is electing its primary: only AUTH, PING and TOPOLOGY-RECORD are served\r\n"
		}
		if _, err := io.WriteString(conn, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not a RESP array")
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 1 || n > 16 {
		return nil, errors.New("bad array length")
	}
	args := make([]string, 0, n)
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(line, "$"))
		if !strings.HasPrefix(line, "$") || err != nil || size < 0 || size > 1024 {
			return nil, errors.New("bad bulk string")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// peerKind is what answered at a Redis pod's address.
type peerKind int

const (
	peerSilent      peerKind = iota // nothing answered
	peerElecting                    // its start gate, electing
	peerLiveMaster                  // its Redis, a primary
	peerLiveReplica                 // its Redis, replicating Follows
)

// peerAnswer is one Redis pod's answer during an election.
type peerAnswer struct {
	kind    peerKind
	own     Own
	follows string
}

// askPeer asks the Redis pod at addr: its start gate for its record, or, when its Redis runs,
// INFO for its role and primary.
func askPeer(ctx context.Context, addr, username, password string, timeout time.Duration) peerAnswer {
	c := redis.NewClient(&redis.Options{Addr: addr, Username: username, Password: password, Protocol: 2, DisableIdentity: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := c.Do(ctx, recordCommand).Text()
	if err == nil {
		own, err := decodeOwn(reply)
		if err != nil {
			return peerAnswer{}
		}
		return peerAnswer{kind: peerElecting, own: own}
	}
	// A running Redis does not know the command (HasErrorPrefix drops the "ERR ").
	if !redis.HasErrorPrefix(err, "unknown command") {
		return peerAnswer{}
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return peerAnswer{}
	}
	fields := infoFields(info)
	switch fields["role"] {
	case "master":
		return peerAnswer{kind: peerLiveMaster}
	case "slave":
		return peerAnswer{kind: peerLiveReplica, follows: net.JoinHostPort(fields["master_host"], fields["master_port"])}
	}
	return peerAnswer{}
}
