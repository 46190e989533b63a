package redistopology_test

import (
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/redistopology"
)

func TestRecordFromInfo_OnlyWhileServing(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef01234567"
	server := "# Server\r\nserver_time_usec:1765000000000000\r\n# Persistence\r\nloading:0\r\n"
	for _, tc := range []struct {
		name, replication string
		want              bool
	}{
		{"a primary", "role:master\r\nmaster_replid:" + id + "\r\nmaster_repl_offset:4242\r\n", true},
		{"a linked replica", "role:slave\r\nmaster_link_status:up\r\nmaster_replid:" + id + "\r\nmaster_repl_offset:4242\r\n", true},
		{"a replica without its primary", "role:slave\r\nmaster_link_status:down\r\nmaster_replid:" + id + "\r\nmaster_repl_offset:0\r\n", false},
		{"no replication id", "role:master\r\nmaster_repl_offset:4242\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := redistopology.RecordFromInfo(server + "# Replication\r\n" + tc.replication)
			if ok != tc.want {
				t.Fatalf("serving = %v, want %v", ok, tc.want)
			}
			if ok && (r.ReplID != id || r.Offset != 4242 || r.Time.UnixMicro() != 1765000000000000) {
				t.Errorf("record %+v", r)
			}
			if back, ok := redistopology.DecodeRecord(r.Encode()); ok != tc.want || back != r {
				t.Errorf("DecodeRecord(Encode) = %+v, %v", back, ok)
			}
		})
	}
	if _, ok := redistopology.RecordFromInfo(server + "loading:1\r\nrole:master\r\nmaster_replid:" + id + "\r\nmaster_repl_offset:1\r\n"); ok {
		t.Error("a primary still loading its AOF records")
	}
	for _, bad := range []string{"", id + " 12", id[:39] + " 1 2", id + " -1 2", id + " x 2"} {
		if _, ok := redistopology.DecodeRecord(bad); ok {
			t.Errorf("DecodeRecord(%q) accepted", bad)
		}
	}
}

func TestElect_TheLatestHistorysFurthestDataWins(t *testing.T) {
	const a, b = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	t0 := time.Unix(1765000000, 0)
	rec := func(id string, offset int64, at time.Duration) *redistopology.Record {
		return &redistopology.Record{ReplID: id, Offset: offset, Time: t0.Add(at)}
	}
	const p0, p1, p2 = "r-0:6379", "r-1:6379", "r-2:6379"
	c := func(addr string, r *redistopology.Record, hasData bool) redistopology.Candidate {
		return redistopology.Candidate{Addr: addr, Answered: true, Record: r, HasData: hasData || r != nil}
	}
	silent := func(addr string) redistopology.Candidate { return redistopology.Candidate{Addr: addr} }
	for _, tc := range []struct {
		name       string
		candidates []redistopology.Candidate
		waitOver   bool
		want       string
		decided    bool
	}{
		{"first start: no data anywhere, pod 0", []redistopology.Candidate{c(p0, nil, false), c(p1, nil, false), c(p2, nil, false)}, false, p0, true},
		{"the furthest offset wins", []redistopology.Candidate{c(p0, rec(a, 100, 0), false), c(p1, rec(a, 300, 0), false), c(p2, rec(a, 200, time.Second), false)}, false, p1, true},
		{"an empty volume never wins over data", []redistopology.Candidate{c(p0, nil, false), c(p1, rec(a, 5, 0), false), c(p2, rec(a, 5, 0), false)}, false, p1, true},
		{"an older history loses though its offset is higher", []redistopology.Candidate{c(p0, rec(a, 9000, 0), false), c(p1, rec(b, 10, time.Minute), false), c(p2, rec(b, 20, time.Minute-time.Second), false)}, false, p2, true},
		{"equal offsets: the lower ordinal", []redistopology.Candidate{c(p0, rec(a, 7, 0), false), c(p1, rec(a, 7, time.Second), false), c(p2, nil, false)}, false, p0, true},
		{"a silent pod may hold the newest data: wait", []redistopology.Candidate{c(p0, rec(a, 7, 0), false), silent(p1), c(p2, nil, false)}, false, "", false},
		{"data without a record beside a record: wait", []redistopology.Candidate{c(p0, rec(a, 7, 0), false), c(p1, nil, true), c(p2, nil, false)}, false, "", false},
		{"after the wait, the records that answered decide", []redistopology.Candidate{c(p0, nil, false), silent(p1), c(p2, rec(a, 7, 0), false), c("r-3:6379", nil, true)}, true, p2, true},
		{"an empty pod is never chosen while another may hold data", []redistopology.Candidate{c(p0, nil, false), silent(p1), c(p2, nil, false)}, true, "", false},
		{"data from before the records (a switch from one pod): taken at once", []redistopology.Candidate{c(p0, nil, true), silent(p1), silent(p2)}, false, p0, true},
		{"data from before the records on pod 1 only: pod 1", []redistopology.Candidate{c(p0, nil, false), c(p1, nil, true), silent(p2)}, false, p1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := redistopology.Elect(tc.candidates, tc.waitOver)
			if got != tc.want || ok != tc.decided {
				t.Errorf("Elect = %q, %v; want %q, %v", got, ok, tc.want, tc.decided)
			}
		})
	}
}
