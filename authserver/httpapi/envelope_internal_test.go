package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// jsonStrings are strings every escaping rule of encoding/json applies to.
var jsonStrings = []string{
	"", "user-1", "a@example.com", `quote " and \ backslash`, "<script>&</script>",
	"tab\tnew\nline\r", "\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff utf-8",
}

// The hand-built bodies of the hot paths must be the bytes json.Marshal writes of
// the envelope they replace, whatever the strings hold.
func TestHandBuiltEnvelopes_AreJSONMarshals(t *testing.T) {
	exp := time.Unix(1767225600, 0)
	for _, s := range jsonStrings {
		p := verifycache.Principal{UserID: s, Email: s + "@", SessionID: "s" + s, ExpiresAt: exp}
		for _, tc := range []struct {
			name string
			got  func(w http.ResponseWriter)
			want envelope
		}{
			{"verify", func(w http.ResponseWriter) { writeVerified(w, p) }, envelope{true, msgSuccess,
				verifyPayload{ID: p.UserID, Email: p.Email, SessionID: p.SessionID, ExpiresAt: exp.Unix()}}},
			{"logout", func(w http.ResponseWriter) {
				writeSuccess(w, http.StatusOK, func(b []byte) []byte { return appendLogoutPayload(b, s) })
			}, envelope{true, msgSuccess, logoutPayload{ID: s}}},
			{"error", func(w http.ResponseWriter) { writeError(w, http.StatusOK, s) }, envelope{false, s, nil}},
		} {
			want, err := json.Marshal(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			tc.got(rec)
			if rec.Body.String() != string(want) {
				t.Errorf("%s of %q:\n got %s\nwant %s", tc.name, s, rec.Body, want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != contentTypeJSON {
				t.Errorf("%s: Content-Type %q", tc.name, ct)
			}
		}
		rec := httptest.NewRecorder()
		writeVerified(rec, p)
		if h := rec.Header(); h.Get(HeaderUserID) != p.UserID || h.Get(HeaderUserEmail) != p.Email || h.Get(HeaderSessionID) != p.SessionID {
			t.Errorf("verify headers of %q: %v", s, h)
		}
	}
}

// A header value shared between responses must not change when one response adds
// to it.
func TestSharedHeaderValues_SurviveAdd(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header()[headerCacheControl] = valueNoStore
	rec.Header().Add(headerCacheControl, "private")
	if len(valueNoStore) != 1 || valueNoStore[0] != "no-store" {
		t.Fatalf("shared value changed: %v", valueNoStore)
	}
}
