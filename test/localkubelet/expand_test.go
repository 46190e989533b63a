package localkubelet

import "testing"

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"POLICY": "always", "EMPTY": ""}
	for _, tc := range []struct{ in, want string }{
		{"--appendfsync=$(POLICY)", "--appendfsync=always"},
		{"$(POLICY)$(POLICY)", "alwaysalways"},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"$$(POLICY)", "$(POLICY)"},
		{"a$$b", "a$b"},
		{"cost $5", "cost $5"},
		{"$(POLICY", "$(POLICY"},
		{"trailing $", "trailing $"},
		{"$(EMPTY)x", "x"},
		{"$()", "$()"},
		{"no vars", "no vars"},
	} {
		if got := ExpandVars(tc.in, vars); got != tc.want {
			t.Errorf("ExpandVars(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
