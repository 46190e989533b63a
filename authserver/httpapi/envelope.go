package httpapi

import (
	"encoding/json"
	"net/http"
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

// writeEnvelope writes status and the envelope, with no trailing newline, as the
// original did.
func writeEnvelope(w http.ResponseWriter, status int, success bool, message string, payload any) {
	body, err := json.Marshal(envelope{Success: success, Message: message, Payload: payload})
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"success":false,"message":"Internal Server Error","payload":null}`)
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeJSON}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeEnvelope(w, status, false, message, nil)
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
