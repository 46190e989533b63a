// Package verifycache remembers recently verified tokens so that forward-auth can skip the signature check and the Redis lookup, and forgets them when they are revoked anywhere.
package verifycache
