package httpapi

import (
	"encoding/json"
	"net/http"
	"sync"
)

// Messages of the envelope, fixed by the wire contract with existing clients.
const (
	msgSuccess         = "Success"
	msgMissingToken    = "missing or malformed jwt"
	msgBlacklisted     = "token is blacklisted"
	msgStoreDown       = "blacklist store unavailable"
	msgNoKeys          = "signing keys not loaded"
	msgNotFound        = "Not Found"
	msgMethod          = "Method Not Allowed"
	msgTooLarge        = "Request Entity Too Large"
	msgOK              = "ok"
	msgDraining        = "shutting down"
	msgInternal        = "Internal Server Error"
	contentTypeJSON    = "application/json; charset=UTF-8"
	contentTypePEM     = "application/x-pem-file"
	contentTypeJWKSet  = "application/json"
	headerWWWAuth      = "WWW-Authenticate"
	headerCacheControl = "Cache-Control"
)

// envelope is the body of every JSON response: {"success":…,"message":…,"payload":…}.
type envelope struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Payload any    `json:"payload"`
}

// Header values every response of a kind shares. A handler assigns these slices to
// the header map instead of building a new one per response; net/http only reads
// them, and Header.Add appends to a copy (their capacity is their length).
var (
	valueContentTypeJSON = []string{contentTypeJSON}
	valueNoStore         = []string{"no-store"}
	valueBearer          = []string{`Bearer`}
	valueInvalidToken    = []string{`Bearer error="invalid_token"`}
)

// writeEnvelope writes status and the envelope, with no trailing newline, as the
// original did.
func writeEnvelope(w http.ResponseWriter, status int, success bool, message string, payload any) {
	body, err := json.Marshal(envelope{Success: success, Message: message, Payload: payload})
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"success":false,"message":"Internal Server Error","payload":null}`)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = valueContentTypeJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes the envelope of a failure; the bytes are json.Marshal's of
// envelope{false, message, nil}, built without reflection (verify's 401 is on the
// hot path too).
func writeError(w http.ResponseWriter, status int, message string) {
	b := getBody()
	*b = append(*b, `{"success":false,"message":`...)
	*b = appendJSONString(*b, message)
	*b = append(*b, `,"payload":null}`...)
	writeJSON(w, status, *b)
	putBody(b)
}

// writeSuccess writes the envelope of a success whose payload appendPayload appends:
// json.Marshal's bytes of envelope{true, msgSuccess, payload}.
func writeSuccess(w http.ResponseWriter, status int, appendPayload func([]byte) []byte) {
	b := getBody()
	*b = append(*b, `{"success":true,"message":"Success","payload":`...)
	*b = appendPayload(*b)
	*b = append(*b, '}')
	writeJSON(w, status, *b)
	putBody(b)
}

// bodies recycles the buffers the hot paths build their bodies in (net/http copies
// what Write is given).
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBody() *[]byte { return bodies.Get().(*[]byte) }

func putBody(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bodies.Put(b)
}

// appendJSONString appends s as encoding/json writes a string. Printable ASCII other
// than the characters json escapes (quote, backslash and, as json.Marshal escapes
// HTML, <, > and &) is copied as it is; any other string is left to encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// allowMethods answers 405 with an Allow header unless r uses one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, allow string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, msgMethod)
	return false
}
