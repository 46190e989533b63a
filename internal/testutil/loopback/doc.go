// Package loopback finds free loopback addresses for tests that start a listener of
// their own, such as a server binary given an address flag.
package loopback
