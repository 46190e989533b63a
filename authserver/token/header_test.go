package token_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hiringo/auth-operator/authserver/token"
)

func TestFromAuthorization(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"Bearer a b", "", false},
		{"Bearer a\tb", "", false},
		{"Token abc", "", false},
	}
	for _, tc := range cases {
		got, err := token.FromAuthorization(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("FromAuthorization(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, token.ErrMissingToken) {
			t.Errorf("FromAuthorization(%q) error %v is not ErrMissingToken", tc.in, err)
		}
	}
}

func TestFromHeader_RejectsMissingAndRepeatedHeaders(t *testing.T) {
	h := http.Header{}
	if _, err := token.FromHeader(h); !errors.Is(err, token.ErrMissingToken) {
		t.Errorf("no header: err = %v", err)
	}
	h.Add("Authorization", "Bearer a")
	h.Add("Authorization", "Bearer b")
	if _, err := token.FromHeader(h); !errors.Is(err, token.ErrMissingToken) {
		t.Errorf("two headers: err = %v", err)
	}
}
