local ok = redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1])
if ok then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return ok
