#!lua name=writerhub

local CHANGES_MAXLEN = 100000

-- a < b for decimal int64 text (Lua numbers are doubles: nanosecond timestamps do not fit)
local function lt(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b end
  return a < b
end

-- creates the stream if new; true when it did
local function ensure(keys, topic, sid, status)
  if redis.call('EXISTS', keys[1]) == 1 then return false end
  local seq = redis.call('INCR', keys[4])
  redis.call('ZADD', keys[3], 'NX', seq, topic)
  redis.call('ZADD', keys[2], 'NX', seq, sid)
  redis.call('HSET', keys[1], 'topic', topic, 'stream_id', sid, 'properties', '{}', 'status', status,
    'events', 0, 'rows', 0, 'edefs', '[]', 'pdefs', '[]')
  return true
end

-- data changes name their entries (a..b); stream changes carry the hash as it is now (h), so a
-- reader sees each state in turn even when it fetches later
local function notify(keys, kind, topic, sid, a, b)
  if a then
    redis.call('XADD', keys[5], 'MAXLEN', '~', CHANGES_MAXLEN, '*', 'k', kind, 't', topic, 's', sid, 'a', a, 'b', b)
  else
    local h = cjson.encode(redis.call('HGETALL', keys[1]))
    redis.call('XADD', keys[5], 'MAXLEN', '~', CHANGES_MAXLEN, '*', 'k', kind, 't', topic, 's', sid, 'h', h)
  end
end

-- ARGV 4 kind (e|p), 5 lowest timestamp, 6 highest ('' when none), 7 maxlen (0: none),
-- 8 max age ms (0: none), then pairs: timestamp, JSON. The hash is read once and written twice
-- (counter, then the other fields) however many entries the write adds.
local function append(keys, args)
  local topic, sid, h = args[1], args[2], keys[1]
  local found = redis.call('HMGET', h, 'status', 'first', 'last')
  local changed = false
  if not found[1] then
    changed = ensure(keys, topic, sid, 'open')
  end
  local set = {'activity', args[3]}
  if found[1] == 'closed' then
    set[#set + 1] = 'status'
    set[#set + 1] = 'open'
    changed = true
  end
  local maxlen = tonumber(args[7])
  local first, last
  local n = 0
  for i = 9, #args, 2 do
    local id
    if maxlen > 0 then
      id = redis.call('XADD', keys[6], 'MAXLEN', '~', maxlen, '*', 't', args[i], 'd', args[i + 1])
    else
      id = redis.call('XADD', keys[6], '*', 't', args[i], 'd', args[i + 1])
    end
    first = first or id
    last = id
    n = n + 1
  end
  if args[8] ~= '0' and n > 0 then
    local now = redis.call('TIME')
    local minid = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(args[8])
    if minid > 0 then redis.call('XTRIM', keys[6], 'MINID', '~', string.format('%d', minid)) end
  end
  if args[4] == 'e' then
    redis.call('HINCRBY', h, 'events', n)
  else
    redis.call('HINCRBY', h, 'rows', n)
  end
  if args[6] ~= '' then
    local f, l = found[2], found[3]
    if not f or lt(args[5], f) then
      set[#set + 1] = 'first'
      set[#set + 1] = args[5]
    end
    if not l or lt(l, args[6]) then
      set[#set + 1] = 'last'
      set[#set + 1] = args[6]
    end
  end
  redis.call('HSET', h, unpack(set))
  if changed then notify(keys, 's', topic, sid) end
  if n > 0 then notify(keys, args[4], topic, sid, first, last) end
  return n
end

-- ARGV 4 properties JSON, 5 reopen (1|0)
local function put_properties(keys, args)
  ensure(keys, args[1], args[2], 'open')
  redis.call('HSET', keys[1], 'properties', args[4], 'activity', args[3])
  if args[5] == '1' then redis.call('HSET', keys[1], 'status', 'open') end
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

local function close_stream(keys, args)
  ensure(keys, args[1], args[2], 'closed')
  redis.call('HSET', keys[1], 'status', 'closed', 'activity', args[3])
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

-- ARGV 4 field (edefs|pdefs), 5 JSON
local function set_definitions(keys, args)
  ensure(keys, args[1], args[2], 'open')
  redis.call('HSET', keys[1], args[4], args[5], 'activity', args[3])
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

-- KEYS 1 record; ARGV 1 pending value, 2 lease ms. The existing record, or nil after claiming.
local function claim(keys, args)
  local found = redis.call('GET', keys[1])
  if found then return found end
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  return false
end

-- KEYS 1 record; ARGV 1 the pending value to drop
local function release(keys, args)
  if redis.call('GET', keys[1]) == args[1] then redis.call('DEL', keys[1]) end
  return 0
end

-- KEYS 1 the topic's quarantine; ARGV the rows' JSON. All or nothing, unlike separate XADDs.
local function quarantine(keys, args)
  for i = 1, #args do redis.call('XADD', keys[1], '*', 'd', args[i]) end
  return #args
end

-- KEYS 1 record; ARGV 1 value, 2 ttl ms
local function finish(keys, args)
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  return 0
end

-- The writes a hub sends in one call, by the name it gives them (store.py).
local WRITES = {
  append = append, quarantine = quarantine, put_properties = put_properties, close_stream = close_stream,
  set_definitions = set_definitions, claim = claim, release = release, finish = finish,
}

-- One call applies many writes, in order (group commit: one script call and one reply for all).
-- KEYS 1 the outcome hash of the hub's pipeline, then outcome hashes already answered (deleted here).
-- ARGV 1 this call's field in the outcome hash, 2 its deadline (ms, Redis' clock), 3 the hash's ttl
-- (ms), 4 the writes, MessagePack: [[name, keys, args], ...] (every key and arg a string; a write's
-- keys are its own, from keys.py: this store runs on one Redis, not a cluster).
-- Past the deadline nothing is applied. Otherwise each write runs alone (a failing one leaves the
-- others applied, as separate calls would) and the reply of all of them, MessagePack, is both the
-- call's reply and kept in the outcome hash in the same atomic call, so the hub learns it even if
-- Redis froze before replying. A write's reply is its value, or {err = message} when it failed.
local function batch(keys, args)
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(args[2]) then
    return redis.error_reply('DEADLINE the hub gave up waiting for these writes: not applied')
  end
  if #keys > 1 then redis.call('DEL', unpack(keys, 2)) end
  local replies = {}
  for i, write in ipairs(cmsgpack.unpack(args[4])) do
    local ok, reply = pcall(WRITES[write[1]], write[2], write[3])
    if ok then
      replies[i] = reply
    else
      replies[i] = {err = type(reply) == 'table' and reply.err or tostring(reply)}
    end
  end
  local packed = cmsgpack.pack(replies)
  redis.call('HSET', keys[1], args[1], packed)
  redis.call('PEXPIRE', keys[1], args[3])
  return packed
end

redis.register_function('hub_batch', batch)
