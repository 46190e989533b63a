local c = redis.call('GET', KEYS[1])
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
return {1, 1, at}
