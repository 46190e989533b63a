package blacklist

import "testing"

// TestRevokedBy decides a check from the values one MGET read, in its order: token,
// cutoff, single-session marker, then for a token of a session its stamp's entry, its
// session's entry and its session's record, then the first release's entry when read.
func TestRevokedBy(t *testing.T) {
	session := facts{iat: 100, hasSession: true, stamp: "st", session: "se"}
	bare := facts{iat: 100}
	for _, tc := range []struct {
		name string
		f    facts
		vals []any
		want bool
	}{
		{"nothing stored", session, []any{nil, nil, nil, nil, nil, nil}, false},
		{"the token's entry", bare, []any{"n", nil, nil}, true},
		{"a cutoff after the token", session, []any{nil, "100 n", nil, nil, nil, nil}, true},
		{"a cutoff before the token", session, []any{nil, "99 n", nil, nil, nil, nil}, false},
		{"a cutoff that does not parse", session, []any{nil, "soon n", nil, nil, nil, nil}, true},
		{"another session made the only one after the token", session, []any{nil, nil, "100 other n", nil, nil, nil}, true},
		{"another session made the only one before the token", session, []any{nil, nil, "99 other n", nil, nil, nil}, false},
		{"the token's session is the only one", session, []any{nil, nil, "200 se n", nil, nil, nil}, false},
		{"a marker that does not parse", session, []any{nil, nil, "garbage", nil, nil, nil}, true},
		{"a token without a session after a single-session login", bare, []any{nil, nil, "100 se n"}, true},
		{"the stamp logged out", session, []any{nil, nil, nil, "n", nil, nil}, true},
		{"the session revoked", session, []any{nil, nil, nil, nil, "n", nil}, true},
		{"the record holds the token's stamp", session, []any{nil, nil, nil, nil, nil, "st 100 n 90 90 1"}, false},
		{"the record holds another stamp", session, []any{nil, nil, nil, nil, nil, "next 101 n 90 90 2"}, true},
		{"the first release's entry of a token of a session", session, []any{nil, nil, nil, nil, nil, nil, "1"}, true},
		{"the first release's entry of a token without a session", bare, []any{nil, nil, nil, "1"}, true},
		{"the first release's layout read, no entry", bare, []any{nil, nil, nil, nil}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := revokedBy(tc.vals, tc.f); got != tc.want {
				t.Errorf("revokedBy(%v) = %v, want %v", tc.vals, got, tc.want)
			}
		})
	}
}

// TestParseMemoryInfo reads used_memory and maxmemory from INFO memory, and refuses a
// reply without them.
func TestParseMemoryInfo(t *testing.T) {
	u, err := parseMemoryInfo("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\nmaxmemory_policy:noeviction\r\n")
	if err != nil || u.Used != 1048576 || u.Max != 4194304 {
		t.Errorf("parseMemoryInfo = %+v, %v; want used 1048576 of 4194304", u, err)
	}
	if _, err := parseMemoryInfo("# Memory\r\nused_memory:1\r\n"); err == nil {
		t.Error("a reply without maxmemory was accepted")
	}
}

// TestMemoryUse_Fuller picks the primary closest to its limit; one with a limit before
// one without; the larger without limits.
func TestMemoryUse_Fuller(t *testing.T) {
	for _, tc := range []struct {
		a, b MemoryUse
		want bool
	}{
		{MemoryUse{Used: 90, Max: 100}, MemoryUse{Used: 500, Max: 1000}, true},
		{MemoryUse{Used: 10, Max: 100}, MemoryUse{Used: 500, Max: 1000}, false},
		{MemoryUse{Used: 10, Max: 100}, MemoryUse{Used: 500}, true},
		{MemoryUse{Used: 600}, MemoryUse{Used: 500}, true},
	} {
		if got := tc.a.fuller(tc.b); got != tc.want {
			t.Errorf("%+v.fuller(%+v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
