package blacklist

import "github.com/redis/go-redis/v9"

// The store's Lua scripts. Each runs atomically on the primary that holds the user's
// keys (they share one hash slot), and takes its time from that primary's clock
// (TIME): a cutoff and the iat of every token issued after it come from one clock,
// whatever the clocks of the pods that ask.
//
// A write's value carries a nonce the caller chose: when go-redis resends a script
// after a timeout or a dropped connection (its retries are blind), the script finds
// its own earlier write and answers as that write did, instead of "already revoked".
// It then rewrites the value in place, so that the connection that carried the retry
// has written and a WAIT on it covers the entry.
//
// The revocation scripts (logout, logout everywhere, refresh) run with allow-oom: a
// Redis at its maxmemory (noeviction) still stores a revocation, which is small and
// bounded by the sessions that exist; only a new session (issueScript) is refused
// there. Script flags need Redis 7.0 or later.
//
// PUBLISH runs through pcall: a Redis user without the channel right cannot turn a
// stored revocation into an error (the start-up check reports that setting instead).

// storeScript is one of the store's scripts and the SHA-1 by which Redis caches it.
type storeScript struct{ src, sha string }

func newStoreScript(src string) storeScript {
	return storeScript{src: src, sha: redis.NewScript(src).Hash()}
}

// The scripts the store runs on requests, by their SHA-1 (Store.script).
var (
	revokeLua = newStoreScript(revokeScript)
	issueLua  = newStoreScript(issueScript)
	rotateLua = newStoreScript(rotateScript)
	cutoffLua = newStoreScript(cutoffScript)
)

// scriptHelpers are the functions every script shares; they follow its shebang line.
const scriptHelpers = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1])
end
local function record(v)
  return string.match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)')
end
local function current(v)
  return string.match(v, '^%S+')
end
local function leading(v)
  return tonumber(string.match(v, '^%d+'))
end
local function publish(channel, msg)
  local p = redis.pcall('PUBLISH', channel, msg)
  if type(p) == 'table' and p.err then return 0 end
  return 1
end
local function keepLater(key, value, pxat)
  local old = redis.call('PEXPIRETIME', key)
  if old == -1 then redis.call('SET', key, value, 'KEEPTTL') return end
  if old > pxat then pxat = old end
  redis.call('SET', key, value, 'PXAT', pxat)
end
local function endedBySingleSession(only, session, iat)
  if not only then return false end
  local at, owner = string.match(only, '^(%d+) (%S+)')
  return owner ~= session and iat <= tonumber(at)
end
local function issueAfter(s, cutoff, notBefore)
  if cutoff and s <= leading(cutoff) then s = leading(cutoff) + 1 end
  if notBefore > s then s = notBefore end
  return s
end
`

// revocationScript and sessionScript start the scripts that may and may not write
// beyond maxmemory.
const (
	revocationScript = "#!lua flags=allow-oom\n" + scriptHelpers
	sessionScript    = "#!lua\n" + scriptHelpers
)

// revokeScript revokes one token or stamp (logout).
//
//	KEYS[1] the key to write (token or stamp entry), KEYS[2] the user's cutoff,
//	KEYS[3] the user's single-session marker, and for a token of a session KEYS[4]
//	the session's record, KEYS[5..] keys whose presence means the token is already
//	revoked (session, token).
//	ARGV: nonce, PXAT of the entry, the token's iat (Unix seconds), channel, message,
//	the stamp's digest ("" for a token without a session), the session's digest,
//	PXAT for a stamp whose session has no record.
//
// The entry of a stamp lives as long as its session's record (the session's latest
// refresh token, as its issuer wrote it), whatever refresh lifetime the pod that logs
// it out runs with; without a record (a session from before records), until the
// last PXAT, computed from the longest refresh lifetime there may be.
//
// Returns {code, published}: code 1 revoked now, 0 already revoked (also a stamp that
// is not its session's current one), -1 stored nothing (the PXAT was already past
// for Redis).
const revokeScript = revocationScript + `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL')
  return {1, 1}
end
if cur then return {0, 1} end
for i = 5, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {0, 1} end
end
local iat = tonumber(ARGV[3])
local c = redis.call('GET', KEYS[2])
if c and iat <= leading(c) then return {0, 1} end
if endedBySingleSession(redis.call('GET', KEYS[3]), ARGV[7], iat) then return {0, 1} end
local pxat = tonumber(ARGV[2])
if ARGV[6] ~= '' then
  local rec = redis.call('GET', KEYS[4])
  local last = tonumber(ARGV[8])
  if rec then
    if current(rec) ~= ARGV[6] then return {0, 1} end
    last = redis.call('PEXPIRETIME', KEYS[4])
  end
  if last > pxat then pxat = last end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', pxat)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
return {1, publish(ARGV[4], ARGV[5])}`

// issueScript starts a session: it writes the session's record, holding its current
// stamp, and returns the iat of its tokens, from Redis' clock and after the user's
// cutoff and the store's data-loss cutoff, so that no store refuses them. With
// single-session it also makes the session the user's only one: every other token of
// the user issued up to then is refused (the marker), without moving the cutoff, so a
// burst of logins never pushes anyone's tokens into the future. Without single-session
// the tokens are issued after such a marker (one left from single-session issuance).
//
//	KEYS[1] the user's cutoff, KEYS[2] the session's record, KEYS[3] the user's
//	single-session marker.
//	ARGV: nonce, the stamp's digest, the data-loss cutoff (Unix seconds, 0 none),
//	how long the record lives after iat (ms), "1" for single-session, how long the
//	marker lives after iat (ms), channel, message (the user), the session's digest.
//
// Returns {code, published, iat}: code 1 issued.
const issueScript = sessionScript + `
local rec = redis.call('GET', KEYS[2])
if rec then
  local _, at, nonce = record(rec)
  if nonce ~= ARGV[1] then return redis.error_reply('ERR session record exists') end
  redis.call('SET', KEYS[2], rec, 'XX', 'KEEPTTL')
  if ARGV[5] == '1' then
    local o = redis.call('GET', KEYS[3])
    if o then redis.call('SET', KEYS[3], o, 'XX', 'KEEPTTL') end
  end
  return {1, 1, tonumber(at)}
end
local iat = issueAfter(now(), redis.call('GET', KEYS[1]), tonumber(ARGV[3]))
local o = redis.call('GET', KEYS[3])
local published = 1
if ARGV[5] ~= '1' and o and iat <= leading(o) then iat = leading(o) + 1 end
if ARGV[5] == '1' then
  local at = iat
  if o and leading(o) > at then at = leading(o) end
  keepLater(KEYS[3], at .. ' ' .. ARGV[9] .. ' ' .. ARGV[1], at * 1000 + tonumber(ARGV[6]))
  published = publish(ARGV[7], ARGV[8])
end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. iat .. ' ' .. ARGV[1] .. ' ' .. iat .. ' ' .. iat .. ' 0', 'PXAT', iat * 1000 + tonumber(ARGV[4]))
return {1, published, iat}`

// rotateScript exchanges a session's refresh token (refresh). The session's record
// holds its current stamp: a presented stamp that is not current is reuse, and the
// whole session is revoked (RFC 9700 §4.14), except the stamp just rotated away
// (the record's stamp is its successor) within the grace period, which gets the
// successor again, so that a client retrying a refresh whose answer it lost stays
// logged in. Rotations and grace answers of one session are rate-limited per window.
// A session older than its maximum lifetime is not refreshed.
//
//	KEYS[1] the session's record, KEYS[2] the user's cutoff, KEYS[3] the user's
//	single-session marker, KEYS[4] the presented stamp's entry (logged out), KEYS[5]
//	the session's entry (revoked).
//	ARGV: nonce, the presented stamp's digest, its successor's digest, the presented
//	token's iat, the data-loss cutoff (Unix seconds, 0 none), how long the record
//	lives after iat (ms), the grace period (s), refreshes allowed per window (0 no
//	limit), the window (s), the session's maximum lifetime (s, 0 none), PXAT of the
//	session's entry on reuse (at least; the record's expiry when later), channel,
//	message of the presented stamp, message of the session, the session's digest,
//	PXAT of the session's entry on reuse when the session has no record.
//
// Returns {code, published, iat, start, retry}: code 1 rotated (iat of the new
// pair), 3 the grace period's answer (the successor's iat), 2 reuse (the session is
// revoked now), 0 already revoked, 4 rate-limited (retry after that many seconds), 5
// the session reached its maximum lifetime, -1 stored nothing.
const rotateScript = revocationScript + `
local rec = redis.call('GET', KEYS[1])
local cur, at, nonce, start, window, count
if rec then cur, at, nonce, start, window, count = record(rec) end
if rec and nonce == ARGV[1] then
  redis.call('SET', KEYS[1], rec, 'XX', 'KEEPTTL')
  return {1, 1, tonumber(at), tonumber(start), 0}
end
local v = redis.call('MGET', KEYS[5], KEYS[2], KEYS[3], KEYS[4])
if v[1] then return {0, 1, 0, 0, 0} end
local iat = tonumber(ARGV[4])
local c = v[2]
if c and iat <= leading(c) then return {0, 1, 0, 0, 0} end
if endedBySingleSession(v[3], ARGV[15], iat) then return {0, 1, 0, 0, 0} end
local s = now()
local reuse = v[4] ~= false
local grace = false
if rec and not reuse then
  local g = tonumber(ARGV[7])
  if cur == ARGV[3] and g > 0 and s - tonumber(at) < g then
    grace = true
  elseif cur ~= ARGV[2] then
    reuse = true
  end
end
if reuse then
  local pxat = tonumber(ARGV[11])
  local last = tonumber(ARGV[16])
  if rec then last = redis.call('PEXPIRETIME', KEYS[1]) end
  if last > pxat then pxat = last end
  redis.call('SET', KEYS[5], ARGV[1], 'PXAT', pxat)
  if redis.call('EXISTS', KEYS[5]) == 0 then return {-1, 0, 0, 0, 0} end
  return {2, publish(ARGV[12], ARGV[14]), 0, 0, 0}
end
start = tonumber(start) or iat
local max = tonumber(ARGV[10])
if max > 0 and s >= start + max then return {5, 1, 0, start, 0} end
window, count = tonumber(window) or s, tonumber(count) or 0
if s - window >= tonumber(ARGV[9]) then window, count = s, 0 end
local limit = tonumber(ARGV[8])
if limit > 0 and count >= limit then return {4, 1, 0, start, window + tonumber(ARGV[9]) - s} end
count = count + 1
if grace then
  redis.call('SET', KEYS[1], cur .. ' ' .. at .. ' ' .. nonce .. ' ' .. start .. ' ' .. window .. ' ' .. count, 'XX', 'KEEPTTL')
  return {3, 1, tonumber(at), start, 0}
end
local rotated = issueAfter(s, c, tonumber(ARGV[5]))
keepLater(KEYS[1], ARGV[3] .. ' ' .. rotated .. ' ' .. ARGV[1] .. ' ' .. start .. ' ' .. window .. ' ' .. count, rotated * 1000 + tonumber(ARGV[6]))
return {1, publish(ARGV[12], ARGV[13]), rotated, start, 0}`

// cutoffScript raises a user's cutoff to now by Redis' clock: every token of the user
// issued at or before it is revoked.
//
//	KEYS[1] the cutoff; with a presenting token (logout everywhere) also KEYS[2] the
//	user's single-session marker, KEYS[3] the session's record (the cutoff again for
//	a token without a session), KEYS[4..] keys whose presence means the presenting
//	token is already revoked.
//	ARGV: nonce, how long the cutoff lives after it (ms), the presenting token's iat
//	or "" for none, channel, message, the stamp's digest ("" for a token without a
//	session), the session's digest.
//
// The cutoff covers the presenting token even when it was issued in the future of
// this clock (its iat after a cutoff in the same second). Without a presenting token
// (an administrator's logout) a cutoff of this second moves one past it, so that a
// token issued after that earlier cutoff (its iat one second after it) ends too. A
// retry finds its own write by the nonce, whatever cutoff it set.
//
// Returns {code, published, cutoff}: code 1 raised (or already higher), 0 the
// presenting token was already revoked, -1 stored nothing.
const cutoffScript = revocationScript + `
local c = redis.call('GET', KEYS[1])
if c and string.match(c, ' (%S+)$') == ARGV[1] then
  redis.call('SET', KEYS[1], c, 'XX', 'KEEPTTL')
  return {1, 1, leading(c)}
end
local prev = c and leading(c)
local at = now()
if ARGV[3] == '' then
  if prev and prev >= at then at = prev + 1 end
else
  local iat = tonumber(ARGV[3])
  for i = 4, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then return {0, 1, prev or 0} end
  end
  if prev and iat <= prev then return {0, 1, prev} end
  if endedBySingleSession(redis.call('GET', KEYS[2]), ARGV[7], iat) then return {0, 1, prev or 0} end
  if ARGV[6] ~= '' then
    local rec = redis.call('GET', KEYS[3])
    if rec and current(rec) ~= ARGV[6] then return {0, 1, prev or 0} end
  end
  if iat > at then at = iat end
end
if prev and prev >= at then return {1, 1, prev} end
keepLater(KEYS[1], at .. ' ' .. ARGV[1], at * 1000 + tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, prev or 0} end
return {1, publish(ARGV[4], ARGV[5]), at}`
