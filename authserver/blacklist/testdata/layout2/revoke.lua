local cur = redis.call('GET', KEYS[1])
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
return {1, 1}
