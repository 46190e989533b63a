package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func TestStatus_OneTableOfReadinessAndKeys(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth")
	as := waitKeys(t, ns, "auth")

	out, err := plugin(t, "status", "-n", ns)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	t.Logf("kubectl authsvc status:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 {
		t.Fatalf("want a header, four readiness rows and two keys, got:\n%s", out)
	}
	for i, want := range [][]string{
		{"PART", "NAME", "STATE", "SINCE", "UNTIL", "DETAIL"},
		{"authservice", "auth"},
		{"keys", "auth-signing-keys", "True"},
		{"server", "auth-authserver", "False"},
		{"redis", "auth-redis", "False"},
		{"key", as.Status.ActiveKeyID, "active", as.Status.LastRotationTime.UTC().Format(time.RFC3339), as.Status.NextRotationTime.UTC().Format(time.RFC3339)},
		{"key", as.Status.NextKeyID, "next"},
	} {
		fields := strings.Fields(lines[i])
		if len(fields) < len(want) || !slices.Equal(fields[:len(want)], want) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
		}
	}
	// The auth server has no kubelet here: the table says why it is not ready.
	if !strings.Contains(lines[3], "http://auth-authserver."+ns+".svc") {
		t.Errorf("the server row lacks the server URL: %q", lines[3])
	}
}

func TestStatus_ChoosingTheAuthService(t *testing.T) {
	ns := newNamespace(t)
	if _, err := plugin(t, "status", "-n", ns); err == nil || !strings.Contains(err.Error(), "no AuthService in namespace "+ns) {
		t.Errorf("no AuthService: err = %v", err)
	}
	createAuthService(t, ns, "one")
	createAuthService(t, ns, "two")
	if _, err := plugin(t, "status", "-n", ns); err == nil || !strings.Contains(err.Error(), "(one, two): choose one with --authservice") {
		t.Errorf("two AuthServices: err = %v", err)
	}
	if out, err := plugin(t, "status", "-n", ns, "--authservice", "two"); err != nil || !strings.Contains(out, "two-authserver") {
		t.Errorf("--authservice two: %v\n%s", err, out)
	}
	if _, err := plugin(t, "status", "-n", ns, "-a", "three"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a missing AuthService: err = %v", err)
	}
}

func TestRotate_WaitsUntilTheNextKeySigns(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth")
	before := waitKeys(t, ns, "auth")

	out, err := plugin(t, "rotate", "-n", ns, "--timeout", "1m")
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	after := getAuthService(t, ns, "auth")
	if after.Status.ActiveKeyID != before.Status.NextKeyID {
		t.Errorf("active key after rotate = %s, want the former next key %s", after.Status.ActiveKeyID, before.Status.NextKeyID)
	}
	request := after.Annotations[authv1alpha1.RotateAnnotation]
	if request == "" || after.Status.LastRotationRequest != request {
		t.Errorf("annotation %q, lastRotationRequest %q: the request the plugin made is not the one handled", request, after.Status.LastRotationRequest)
	}
	if !strings.Contains(out, "key "+before.Status.NextKeyID+" signs now; key "+before.Status.ActiveKeyID+" is retired") {
		t.Errorf("rotate did not report the new key:\n%s", out)
	}
}

func TestRotate_TimeoutSaysWhyTheKeyDidNotChange(t *testing.T) {
	// The operator of the suite does not watch this namespace, so nothing rotates.
	createNamespaceNamed(t, unwatchedNamespace)
	createAuthService(t, unwatchedNamespace, "auth")

	out, err := plugin(t, "rotate", "-n", unwatchedNamespace, "--timeout", "2s")
	if err == nil {
		t.Fatalf("rotate succeeded without an operator:\n%s", out)
	}
	for _, want := range []string{"AuthService " + unwatchedNamespace + "/auth still signs with key (none) after 2s", "--min-key-publish-time"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the timeout error %q lacks %q", err, want)
		}
	}
	if got := getAuthService(t, unwatchedNamespace, "auth").Annotations[authv1alpha1.RotateAnnotation]; got == "" {
		t.Error("rotate did not set the rotate annotation")
	}
}

func TestRevoke_PreviewChangesNothingAndYesRevokes(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth")
	before := waitKeys(t, ns, "auth")
	active := before.Status.ActiveKeyID

	// A kid is base64url and may start with '-': it goes after --, as the usage says.
	out, err := plugin(t, "revoke", "-n", ns, "--", active)
	if err != nil {
		t.Fatalf("revoke preview: %v\n%s", err, out)
	}
	t.Logf("kubectl authsvc revoke %s:\n%s", active, out)
	for _, want := range []string{
		"Revoking key " + active + " of AuthService " + ns + "/auth:",
		"key:       active, signing since ",
		"every token this key signed stops verifying at once",
		"the next key " + before.Status.NextKeyID + " signs at once",
		"keys:      1 of 2 stay published: " + before.Status.NextKeyID + " (next)",
		"replicas:  0 auth-server replica(s) (Deployment auth-authserver)",
		"Nothing changed. Run again with --yes to revoke.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the preview lacks %q:\n%s", want, out)
		}
	}
	if got := getAuthService(t, ns, "auth"); len(got.Spec.SigningKeys.RevokedKeyIDs) != 0 || got.Status.ActiveKeyID != active {
		t.Fatalf("the preview changed the AuthService: revoked %v, active %s", got.Spec.SigningKeys.RevokedKeyIDs, got.Status.ActiveKeyID)
	}

	out, err = plugin(t, "revoke", "-n", ns, "--yes", "--timeout", "1m", "--", active)
	if err != nil {
		t.Fatalf("revoke --yes: %v\n%s", err, out)
	}
	after := getAuthService(t, ns, "auth")
	if !slices.Equal(after.Spec.SigningKeys.RevokedKeyIDs, []authv1alpha1.KeyID{authv1alpha1.KeyID(active)}) {
		t.Errorf("revokedKeyIDs = %v, want [%s]", after.Spec.SigningKeys.RevokedKeyIDs, active)
	}
	if _, published := findKey(after, active); published || after.Status.ActiveKeyID != before.Status.NextKeyID {
		t.Errorf("after revoke --yes: key still published %v, active %s (want %s)", published, after.Status.ActiveKeyID, before.Status.NextKeyID)
	}
	// The operator's KeyRevoked event names the entry's field manager: the plugin's own.
	owners := 0
	for _, f := range after.ManagedFields {
		if f.Manager == "kubectl-authsvc" && f.FieldsV1 != nil && strings.Contains(f.FieldsV1.GetRawString(), `"v:\"`+active+`\""`) {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("managedFields do not name kubectl-authsvc as the writer of %s: %+v", active, after.ManagedFields)
	}
	if !strings.Contains(out, "key "+active+" is no longer published; key "+before.Status.NextKeyID+" signs") {
		t.Errorf("revoke --yes did not report the outcome:\n%s", out)
	}

	// Again: already revoked, nothing to do.
	if out, err := plugin(t, "revoke", "-n", ns, "--yes", "--", active); err != nil || !strings.Contains(out, "already in spec.signingKeys.revokedKeyIDs") {
		t.Errorf("second revoke: %v\n%s", err, out)
	}
	// A kid it does not publish: an error listing the ones it does.
	if _, err := plugin(t, "revoke", "-n", ns, "Wjjx1GfajYs2tRgMaZIhaT_BHzuAQQ5GZ2ae_Ns6Y-I"); err == nil || !strings.Contains(err.Error(), "publishes no key Wjjx1GfajYs2tRgMaZIhaT_BHzuAQQ5GZ2ae_Ns6Y-I; it publishes: "+after.Status.ActiveKeyID+" (active)") {
		t.Errorf("unknown kid: err = %v", err)
	}
}

// The preview of each state, from a status as the operator writes it.
func TestRevokePreview_ByState(t *testing.T) {
	at := func(s string) *metav1.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Time{Time: tm}
	}
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "auth"}}
	as.Status.ActiveKeyID, as.Status.NextKeyID = "A", "N"
	as.Status.Keys = []authv1alpha1.PublishedKey{
		{KeyID: "A", State: "active", CreatedAt: *at("2026-10-01T00:00:00Z"), ActivatedAt: at("2026-11-01T00:00:00Z")},
		{KeyID: "N", State: "next", CreatedAt: *at("2026-11-01T00:00:00Z")},
		{KeyID: "R", State: "retired", CreatedAt: *at("2026-09-01T00:00:00Z"), RetiredAt: at("2026-11-01T00:00:00Z"), ExpiresAt: at("2026-11-01T00:20:00Z")},
	}
	as.Spec.Server.Replicas = ptr.To[int32](3)
	fromSpec := replicaCount{n: 3, source: "spec.server.replicas; the Deployment could not be read"}
	for _, tc := range []struct {
		kid  string
		want []string
	}{
		{"A", []string{"key:       active, signing since 2026-11-01T00:00:00Z", "the next key N signs at once", "keys:      2 of 3 stay published: N (next), R (retired)"}},
		{"N", []string{"key:       next, published at 2026-11-01T00:00:00Z", "signing:   unchanged; the operator publishes a new next key", "2 of 3 stay published: A (active), R (retired)"}},
		{"R", []string{"key:       retired, retired at 2026-11-01T00:00:00Z, expires at 2026-11-01T00:20:00Z", "signing:   unchanged\n", "2 of 3 stay published: A (active), N (next)"}},
	} {
		got, err := revokePreview(as, tc.kid, fromSpec)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range append(tc.want, "replicas:  3 auth-server replica(s) (spec.server.replicas; the Deployment could not be read)") {
			if !strings.Contains(got, w) {
				t.Errorf("revoke %s: the preview lacks %q:\n%s", tc.kid, w, got)
			}
		}
	}
}

func TestStatusRows_OrderAndTimes(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	next := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Generation: 2}}
	as.Status.NextRotationTime = &next
	as.Status.Conditions = []metav1.Condition{{Type: authv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: 1, LastTransitionTime: created}}
	as.Status.Keys = []authv1alpha1.PublishedKey{
		{KeyID: "R", State: "retired", RetiredAt: &created, ExpiresAt: &next},
		{KeyID: "N", State: "next", CreatedAt: created},
		{KeyID: "A", State: "active", ActivatedAt: &created},
	}
	rows := statusRows(as)
	want := [][]string{
		statusHeader,
		{"authservice", "auth", "True (stale)", "2026-11-01T00:00:00Z", "-", "Ready"},
		{"keys", "auth-signing-keys", "Unknown", "-", "-", "KeysReady not reported yet"},
		{"server", "auth-authserver", "Unknown", "-", "-", "ServerReady not reported yet"},
		{"redis", "auth-redis", "Unknown", "-", "-", "RedisReady not reported yet"},
		{"key", "A", "active", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "signs until the next rotation"},
		{"key", "N", "next", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "published, verifies; signs from the next rotation"},
		{"key", "R", "retired", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "verifies the tokens it signed until it expires"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %q", rows)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
}
