// Package blacklist stores logged-out tokens in Redis until they expire.
package blacklist
