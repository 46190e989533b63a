// Package redisconf renders the redis.conf of the managed Redis and checks the password
// that goes into it.
package redisconf
