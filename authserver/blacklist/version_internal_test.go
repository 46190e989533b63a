package blacklist

import "testing"

// TestRedisVersion_ReadsTheVersionOfAnInfoReply reads redis_version from replies of
// INFO server, as Redis and a cluster node send them.
func TestRedisVersion_ReadsTheVersionOfAnInfoReply(t *testing.T) {
	for _, tc := range []struct{ info, want string }{
		{"# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n", "7.0.15"},
		{"# Server\nredis_version:6.2.14\nredis_mode:cluster\n", "6.2.14"},
		{"# Server\r\nredis_mode:standalone\r\n", ""},
	} {
		if got := redisVersion(tc.info); got != tc.want {
			t.Errorf("redisVersion(%q) = %q, want %q", tc.info, got, tc.want)
		}
	}
}
