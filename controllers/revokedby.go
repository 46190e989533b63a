package controllers

import (
	"encoding/json"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// revokedBy names the field managers that own kid's entry of
// spec.signingKeys.revokedKeyIDs, from the object's managedFields: who revoked the key.
// revokedKeyIDs is a set list, so each entry has its own owners (v:"kid"). The names
// are sorted; none when managedFields do not say (stripped, or not yet written).
func revokedBy(fields []metav1.ManagedFieldsEntry, kid string) []string {
	value, err := json.Marshal(kid)
	if err != nil {
		return nil
	}
	entry := "v:" + string(value)
	var out []string
	for _, f := range fields {
		if f.FieldsV1 == nil || !ownsPath(f.FieldsV1.GetRawBytes(), "f:spec", "f:signingKeys", "f:revokedKeyIDs", entry) {
			continue
		}
		out = append(out, f.Manager)
	}
	sort.Strings(out)
	return out
}

// ownsPath reports whether a FieldsV1 document holds the path.
func ownsPath(raw []byte, path ...string) bool {
	var node map[string]json.RawMessage
	if err := json.Unmarshal(raw, &node); err != nil {
		return false
	}
	for i, p := range path {
		next, ok := node[p]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		node = nil
		if err := json.Unmarshal(next, &node); err != nil {
			return false
		}
	}
	return false
}

// revokerText is how a KeyRevoked event names who revoked the key.
func revokerText(managers []string) string {
	if len(managers) == 0 {
		return "by an unknown field manager (managedFields do not name one)"
	}
	return "by field manager " + strings.Join(managers, ", ")
}
