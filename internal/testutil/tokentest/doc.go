// Package tokentest makes key sets and tokens, good and deliberately broken, for the auth server's tests.
package tokentest
