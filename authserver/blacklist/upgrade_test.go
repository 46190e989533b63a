package blacklist_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// earlierRelease writes into Redis what the servers of an earlier release wrote, with
// their own scripts (testdata/README.md) and their key names.
type earlierRelease struct {
	t      *testing.T
	client redis.UniversalClient
	prefix string
}

func (r earlierRelease) script(name string) string {
	r.t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// tag is the user's hash tag as layout 2 named its keys: "<prefix>{<22 characters
// of the user digest>}:".
func (r earlierRelease) tag(sub blacklist.Subject) string {
	return r.prefix + "{" + strings.TrimPrefix(blacklist.IDsOf(sub).User, "user:")[:22] + "}:"
}

// logoutLayout1 is a logout by a server of the first release: "<prefix>bl:<id>".
func (r earlierRelease) logoutLayout1(sub blacklist.Subject, exp time.Time) {
	r.t.Helper()
	err := r.client.Eval(context.Background(), r.script("layout1/logout.lua"), []string{r.prefix + "bl:" + sub.TokenID},
		exp.Add(30*time.Second).UnixMilli(), r.prefix+"revocations", sub.TokenID).Err()
	if err != nil {
		r.t.Fatalf("layout 1 logout: %v", err)
	}
}

// revokeLayout2 runs layout 2's revoke script on sub's stamp: a logout, or with
// rotate a refresh (a second one on the same stamp is reuse). It returns the code.
func (r earlierRelease) revokeLayout2(sub blacklist.Subject, rotate bool) int64 {
	r.t.Helper()
	ids := blacklist.IDsOf(sub)
	tag := r.tag(sub)
	until := time.Now().Add(720*time.Hour + 6*time.Minute).UnixMilli()
	args := []any{"nonce-" + sub.Stamp, until, sub.IssuedAt.Unix(), r.prefix + "revocations", ids.Stamp}
	if rotate {
		args = append(args, until, ids.Session)
		args[0] = "rotate-" + time.Now().String()
	}
	vals, err := r.client.Eval(context.Background(), r.script("layout2/revoke.lua"),
		[]string{tag + ids.Stamp, tag + "cutoff", tag + ids.Session, tag + "bl:" + ids.Token}, args...).Int64Slice()
	if err != nil {
		r.t.Fatalf("layout 2 revoke: %v", err)
	}
	return vals[0]
}

// cutOffLayout2 is a logout everywhere by a server of layout 2 at at.
func (r earlierRelease) cutOffLayout2(sub blacklist.Subject, at time.Time) {
	r.t.Helper()
	ids := blacklist.IDsOf(sub)
	err := r.client.Eval(context.Background(), r.script("layout2/cutoff.lua"), []string{r.tag(sub) + "cutoff"},
		at.Unix(), "nonce-cutoff", at.Add(720*time.Hour).UnixMilli(), "", r.prefix+"revocations", ids.User).Err()
	if err != nil {
		r.t.Fatalf("layout 2 cutoff: %v", err)
	}
}

// TestUpgrade_LogoutsOfEarlierReleasesStayRefused writes logouts, refreshes, a reuse
// and a logout everywhere into a real redis-server with the scripts of the earlier
// releases, then starts a server of this release on it as serve does (the generation
// check first): every token they revoked stays refused, the tokens they did not
// revoke verify, a session of layout 2 refreshes on, and its stamp rotated away under
// layout 2 is still reuse. From the first release directly (no marker) and through
// layout 2 (its marker), on a single node and on a Cluster (where the first release's
// keys lie outside the user's slot).
func TestUpgrade_LogoutsOfEarlierReleasesStayRefused(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cluster       bool
		layout2Marker bool
	}{
		{"from the first release, single node", false, false},
		{"through layout 2, single node", false, true},
		{"from the first release, cluster", true, false},
		{"through layout 2, cluster", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{Cluster: tc.cluster})
			mode := blacklist.ModeStandalone
			if tc.cluster {
				mode = blacklist.ModeCluster
			}
			client, err := blacklist.NewClient(blacklist.ClientConfig{Mode: mode, Addrs: []string{srv.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { client.Close() })
			ctx := context.Background()
			old := earlierRelease{t: t, client: client, prefix: "up:"}
			iat := time.Now().Add(-time.Minute).Truncate(time.Second)
			sub := func(user, session, stamp string) blacklist.Subject {
				return blacklist.Subject{UserID: user, TokenID: "jti:" + user + stamp, SessionID: session, Stamp: stamp, IssuedAt: iat}
			}

			loggedOut1 := sub("u-1", "s-1", "st-1") // a seed token with a session, logged out by the first release
			clear1 := sub("u-1", "s-1b", "st-1b")
			old.logoutLayout1(loggedOut1, iat.Add(15*time.Minute))
			want := map[string]bool{"first release's logout": true, "a token the first release did not revoke": false}
			subjects := map[string]blacklist.Subject{"first release's logout": loggedOut1, "a token the first release did not revoke": clear1}

			var rotatedAway, current, reused blacklist.Subject
			if tc.layout2Marker {
				loggedOut2 := sub("u-2", "s-2", "st-2")
				if code := old.revokeLayout2(loggedOut2, false); code != 1 {
					t.Fatalf("layout 2 logout: code %d", code)
				}
				rotatedAway, current = sub("u-3", "s-3", "st-3a"), sub("u-3", "s-3", "st-3b")
				if code := old.revokeLayout2(rotatedAway, true); code != 1 {
					t.Fatalf("layout 2 refresh: code %d", code)
				}
				reused = sub("u-4", "s-4", "st-4")
				old.revokeLayout2(reused, true)
				if code := old.revokeLayout2(reused, true); code != 2 {
					t.Fatalf("layout 2 reuse: code %d", code)
				}
				cutOff := sub("u-5", "s-5", "st-5")
				old.cutOffLayout2(cutOff, iat)
				later := sub("u-5", "s-5b", "st-5b")
				later.IssuedAt = iat.Add(time.Second)
				if err := client.Set(ctx, "up:store-generation", `{"generation":"1796000000000-abcdefgh"}`, 0).Err(); err != nil {
					t.Fatal(err)
				}
				for name, s := range map[string]blacklist.Subject{
					"layout 2 logout": loggedOut2, "layout 2 refresh: the stamp rotated away": rotatedAway,
					"layout 2 refresh: the current stamp": current, "layout 2 reuse": reused,
					"layout 2 logout everywhere": cutOff, "a token after the layout 2 cutoff": later,
				} {
					subjects[name] = s
					want[name] = s != current && s != later
				}
			}

			s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "up:"})
			t.Cleanup(s.Close)
			ev, err := s.CheckGeneration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Lost || ev.Generation.KeyLayout != blacklist.KeyLayout || ev.Generation.LegacyUntil < time.Now().Add(blacklist.LegacyLayoutWindow-time.Minute).UnixMilli() {
				t.Fatalf("generation after the upgrade: %+v; want this layout marked, the first release's entries read for %s, no loss", ev, blacklist.LegacyLayoutWindow)
			}
			for name, sb := range subjects {
				if listed, err := s.Check(ctx, sb); err != nil || listed != want[name] {
					t.Errorf("%s: Check = %v, %v; want %v", name, listed, err, want[name])
				}
			}
			if err := s.Revoke(ctx, loggedOut1, blacklist.Until(time.Now().Add(time.Hour))); !errors.Is(err, blacklist.ErrRevoked) {
				t.Errorf("logout of the first release's logged-out token: %v, want already blacklisted", err)
			}
			if _, err := s.CutOff(ctx, loggedOut1, true, time.Hour); !errors.Is(err, blacklist.ErrRevoked) {
				t.Errorf("logout everywhere with the first release's logged-out token: %v, want already blacklisted", err)
			}
			if !tc.layout2Marker {
				return
			}
			policy := blacklist.SessionPolicy{RecordLifetime: time.Hour}
			rot, err := s.Rotate(ctx, current, "st-3c", policy, blacklist.Until(time.Now().Add(time.Hour)))
			if err != nil || rot.SessionStart.Unix() != current.IssuedAt.Unix() {
				t.Fatalf("refresh of a layout 2 session: %+v, %v; want it rotated, started at its refresh token's iat", rot, err)
			}
			next := current
			next.Stamp, next.IssuedAt = "st-3c", rot.IssuedAt
			if listed, err := s.Check(ctx, next); err != nil || listed {
				t.Fatalf("the new pair of a layout 2 session: listed %v, %v", listed, err)
			}
			if _, err := s.Rotate(ctx, rotatedAway, "st-3b", policy, blacklist.Until(time.Now().Add(time.Hour))); !errors.Is(err, blacklist.ErrReuse) {
				t.Fatalf("refresh with the stamp layout 2 rotated away: %v, want reuse", err)
			}
			if listed, err := s.Check(ctx, next); err != nil || !listed {
				t.Fatalf("the session after that reuse: listed %v, %v; want revoked", listed, err)
			}
		})
	}
}
