package blacklist

// The store's Lua scripts. Each runs atomically on the primary that holds the user's
// keys (they share one hash slot). A write's value is a nonce the caller chose: when
// go-redis resends a script after a timeout or a dropped connection (its retries are
// blind), the script finds its own earlier write and answers as that write did,
// instead of "already revoked". It then rewrites the value in place, so that the
// connection that carried the retry has written and a WAIT on it covers the entry.
// PUBLISH runs through pcall: a Redis user without the channel right cannot turn a
// stored revocation into an error (the start-up check reports that setting instead).

// revokeScript revokes one token or stamp.
//
//	KEYS[1] the key to write (token or stamp), KEYS[2] the user's cutoff,
//	KEYS[3..] further keys whose presence means the token is already revoked
//	(session, token).
//	ARGV: nonce, PXAT of the entry, the token's iat (Unix seconds), channel, message,
//	and for a refresh: PXAT of the session entry and the session's message (a stamp
//	that was rotated before is reuse: the whole session is revoked).
//
// Returns {code, published}: code 1 revoked now, 0 already revoked, 2 reuse (the
// session is revoked now), -1 stored nothing (the PXAT was already past for Redis).
const revokeScript = `local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL')
  return {1, 1}
end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {0, 1} end
end
local c = redis.call('GET', KEYS[2])
if c and tonumber(ARGV[3]) <= tonumber(string.match(c, '^%d+')) then return {0, 1} end
if cur then
  if ARGV[6] and KEYS[3] then
    redis.call('SET', KEYS[3], ARGV[1], 'PXAT', ARGV[6])
    local p = redis.pcall('PUBLISH', ARGV[4], ARGV[7])
    if type(p) == 'table' and p.err then return {2, 0} end
    return {2, 1}
  end
  return {0, 1}
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local p = redis.pcall('PUBLISH', ARGV[4], ARGV[5])
if type(p) == 'table' and p.err then return {1, 0} end
return {1, 1}`

// cutoffScript raises a user's cutoff: every token of the user issued at or before it
// is revoked.
//
//	KEYS[1] the cutoff, KEYS[2..] keys whose presence means the presenting token is
//	already revoked (none for an issuance).
//	ARGV: the cutoff (Unix seconds), nonce, PXAT, the presenting token's iat or ""
//	for none, channel, message.
//
// Without a presenting token (an issuance ending the user's earlier sessions) the
// cutoff always moves past the previous one, so that a session issued in the same
// second as the previous cutoff (its iat one second after it) ends too.
//
// Returns {code, published, cutoff}: code 1 raised (or already higher), 0 the
// presenting token was already revoked, -1 stored nothing.
const cutoffScript = `local c = redis.call('GET', KEYS[1])
local want = ARGV[1] .. ' ' .. ARGV[2]
if c == want then
  redis.call('SET', KEYS[1], want, 'XX', 'KEEPTTL')
  return {1, 1, tonumber(ARGV[1])}
end
local at = tonumber(ARGV[1])
local prev = c and tonumber(string.match(c, '^%d+'))
if ARGV[4] == '' then
  if prev and prev >= at then at = prev + 1; want = at .. ' ' .. ARGV[2] end
else
  for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then return {0, 1, prev or 0} end
  end
  if prev and tonumber(ARGV[4]) <= prev then return {0, 1, prev} end
  if tonumber(ARGV[4]) > at then at = tonumber(ARGV[4]); want = at .. ' ' .. ARGV[2] end
end
if prev and prev >= at then return {1, 1, prev} end
redis.call('SET', KEYS[1], want, 'PXAT', ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, prev or 0} end
local p = redis.pcall('PUBLISH', ARGV[5], ARGV[6])
if type(p) == 'table' and p.err then return {1, 0, at} end
return {1, 1, at}`
