package redistopology

import (
	"bufio"
	"cmp"
	"strconv"
	"strings"
	"time"
)

// Record is what a Redis pod last knew of its data while it served: its replication history
// (ReplID: a primary's own, a replica's primary's) and how far into it its data went (Offset),
// at Time by its server's clock. Redis keeps neither across a restart from its AOF, which
// starts a new history at offset 0, so each Redis pod records them on its volume while it
// serves (authserver redis-probe) and the pods compare them after a restart of every pod.
type Record struct {
	ReplID string
	Offset int64
	Time   time.Time
}

// RecordFromInfo is the record of a Redis's INFO reply (the server and replication sections),
// and whether its data is worth recording: a primary, or a replica linked to its primary.
// A replica that lost its link, or one still loading, records nothing: what it holds is
// not the history's latest.
func RecordFromInfo(info string) (Record, bool) {
	fields := infoFields(info)
	serving := fields["role"] == "master" || (fields["role"] == "slave" && fields["master_link_status"] == "up")
	offset, errOffset := strconv.ParseInt(fields["master_repl_offset"], 10, 64)
	usec, errTime := strconv.ParseInt(fields["server_time_usec"], 10, 64)
	if !serving || fields["loading"] == "1" || errOffset != nil || errTime != nil || len(fields["master_replid"]) != 40 {
		return Record{}, false
	}
	return Record{ReplID: fields["master_replid"], Offset: offset, Time: time.UnixMicro(usec)}, true
}

// infoFields are the key:value lines of an INFO reply.
func infoFields(info string) map[string]string {
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// Encode is the record as one line, "replid offset unix-microseconds".
func (r Record) Encode() string {
	return r.ReplID + " " + strconv.FormatInt(r.Offset, 10) + " " + strconv.FormatInt(r.Time.UnixMicro(), 10) + "\n"
}

// DecodeRecord parses Encode's line; false for anything else (a file cut short, or none).
func DecodeRecord(line string) (Record, bool) {
	parts := strings.Fields(line)
	if len(parts) != 3 || len(parts[0]) != 40 {
		return Record{}, false
	}
	offset, err1 := strconv.ParseInt(parts[1], 10, 64)
	usec, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || offset < 0 {
		return Record{}, false
	}
	return Record{ReplID: parts[0], Offset: offset, Time: time.UnixMicro(usec)}, true
}

// Candidate is one Redis pod in an election after a restart of every pod.
type Candidate struct {
	// Addr is the pod's host:port.
	Addr string
	// Answered says the pod told its record (or that it has none).
	Answered bool
	// Record is its record; nil when it has none: a new volume, or one that never served.
	Record *Record
	// HasData says its volume holds data (an AOF) even without a record.
	HasData bool
}

// Elect picks the primary after a restart of every Redis pod, from candidates in ordinal
// order; ok is false when it cannot be decided yet.
//
// With records: the latest history is the one of the most recent record; among the pods that
// recorded it, the one whose data went furthest (the highest offset, ties to the lower
// ordinal) wins: every acknowledged logout reached it or a replica that recorded no more. A
// pod with an older history, no record or an empty volume never wins over one with a record
// of the latest history. Every candidate must have answered and none may hold data without a
// record (either may hold the newest data), unless the wait is over: then the records that
// answered decide.
//
// Without a record among those that answered: data that predates the records (a switch from
// one Redis pod, whose pod 0 keeps its volume, or an upgrade) is taken as it is, the lowest
// ordinal holding data; with no data anywhere, pod 0 once every pod answered (a first start).
// An empty pod never wins while another may hold data: without an answer from each, nothing
// is decided.
func Elect(candidates []Candidate, waitOver bool) (primary string, ok bool) {
	best, firstData, all, ambiguous := -1, -1, true, false
	for i, c := range candidates {
		switch {
		case !c.Answered:
			all = false
		case c.Record != nil:
			if best < 0 || newer(*c.Record, *candidates[best].Record) {
				best = i
			}
		case c.HasData:
			ambiguous = true
			if firstData < 0 {
				firstData = i
			}
		}
	}
	switch {
	case best >= 0 && (all && !ambiguous || waitOver):
		// In ordinal order, only a strictly higher offset replaces the winner: ties go to the
		// lower ordinal.
		latest, winner := candidates[best].Record.ReplID, -1
		for i, c := range candidates {
			if c.Answered && c.Record != nil && c.Record.ReplID == latest && (winner < 0 || c.Record.Offset > candidates[winner].Record.Offset) {
				winner = i
			}
		}
		return candidates[winner].Addr, true
	case best >= 0:
		return "", false
	case firstData >= 0:
		return candidates[firstData].Addr, true
	case all && len(candidates) > 0:
		return candidates[0].Addr, true
	}
	return "", false
}

// newer reports whether a was recorded after b.
func newer(a, b Record) bool { return cmp.Compare(a.Time.UnixMicro(), b.Time.UnixMicro()) > 0 }
