// Package poll lets a test wait for a condition that something else makes true, failing
// the test with what it waited for when the time is up.
package poll
