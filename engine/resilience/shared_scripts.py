"""The Lua scripts that move a shared breaker in Redis, each one atomic on the server.

A breaker lives in a hash `<prefix>:<name>` (state, epoch, gen, failures, opened_ms,
since_ms, reason, node) and its probe lease in `<prefix>:<name>:probe` (SET NX PX, holding
the probing node's id). Times come from the Redis clock (`TIME`), so nodes with skewed
clocks still agree on when the reset timeout ends. `gen` grows on every transition and on a
probe take-over; an outcome carries the (epoch, gen) its call was admitted under and is
dropped when the breaker has moved on. `epoch` is set on the first write, so a Redis that
lost its data is noticed instead of its small `gen` being taken for an old one.

Every script answers with a snapshot (see `SNAPSHOT_FIELDS`) headed by a verdict word, as
one JSON array (a single bulk string parses far faster in redis-py than a 12-item reply), and
publishes it as `[name, snapshot]` JSON on `<prefix>:changes` when it changed something.
KEYS are always (hash, probe key); ARGV starts with (channel, breaker name).
"""

from __future__ import annotations

SNAPSHOT_FIELDS = (
    "verdict", "state", "epoch", "generation", "failures", "opened_ms", "since_ms", "reason",
    "node", "probe_node", "probe_ttl_ms", "now_ms",
)

_COMMON = """
local key, probe_key, channel, name = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function field(field_name, default)
  local value = redis.call('HGET', key, field_name)
  if value then return value end
  return default
end

local function fields(verdict)
  local h = redis.call('HMGET', key, 'state', 'epoch', 'gen', 'failures', 'opened_ms',
                       'since_ms', 'reason', 'node')
  local holder = redis.call('GET', probe_key)
  return {verdict, h[1] or 'closed', h[2] or '', tonumber(h[3] or '0'), tonumber(h[4] or '0'),
          tonumber(h[5] or '0'), tonumber(h[6] or '0'), h[7] or '', h[8] or '', holder or '',
          redis.call('PTTL', probe_key), now}
end

local function snapshot(verdict)
  return cjson.encode(fields(verdict))
end

local function changed(verdict)
  local snap = fields(verdict)
  redis.call('PUBLISH', channel, cjson.encode({name, snap}))
  return cjson.encode(snap)
end

local function ensure_epoch()
  if not redis.call('HGET', key, 'epoch') then
    redis.call('HSET', key, 'epoch', clock[1] .. '.' .. clock[2])
  end
end

local function current(epoch, gen)
  return field('epoch', '') == epoch and field('gen', '0') == gen
end

local function transition(state, reason, node)
  ensure_epoch()
  redis.call('HINCRBY', key, 'gen', 1)
  redis.call('HSET', key, 'state', state, 'since_ms', now, 'reason', reason, 'node', node)
  if state == 'open' then redis.call('HSET', key, 'opened_ms', now) end
  if state == 'closed' then redis.call('HSET', key, 'failures', 0) end
  if state ~= 'half_open' then redis.call('DEL', probe_key) end
end
"""

READ = _COMMON + """
return snapshot('read')
"""

# ARGV: channel, name, epoch, gen, fail_max, reason, node
FAILURE = _COMMON + """
if not current(ARGV[3], ARGV[4]) then return snapshot('stale') end
local state = field('state', 'closed')
if state == 'closed' then
  ensure_epoch()
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  if failures >= tonumber(ARGV[5]) then
    transition('open', ARGV[6], ARGV[7])
    return changed('opened')
  end
  return changed('counted')
elseif state == 'half_open' then
  transition('open', ARGV[6], ARGV[7])
  return changed('opened')
end
return snapshot('ignored')
"""

# ARGV: channel, name, epoch, gen, node
SUCCESS = _COMMON + """
if not current(ARGV[3], ARGV[4]) then return snapshot('stale') end
local state = field('state', 'closed')
if state == 'half_open' then
  transition('closed', 'probe call succeeded', ARGV[5])
  return changed('closed')
elseif state == 'closed' and tonumber(field('failures', '0')) > 0 then
  redis.call('HSET', key, 'failures', 0)
  return changed('reset')
end
return snapshot('ignored')
"""

# ARGV: channel, name, reset_ms, lease_ms, node
PROBE = _COMMON + """
local state = field('state', 'closed')
if state == 'closed' then return snapshot('closed') end
if state == 'open' then
  if now - tonumber(field('opened_ms', '0')) < tonumber(ARGV[3]) then return snapshot('wait') end
  transition('half_open', 'reset timeout elapsed; one probe call let through', ARGV[5])
  redis.call('SET', probe_key, ARGV[5], 'PX', ARGV[4])
  return changed('probe')
end
if redis.call('SET', probe_key, ARGV[5], 'PX', ARGV[4], 'NX') then
  -- the slot was free (a probe ended neutrally or its node died): a late outcome of the
  -- earlier probe must no longer count
  redis.call('HINCRBY', key, 'gen', 1)
  return changed('probe')
end
return snapshot('busy')
"""

# ARGV: channel, name, node
RELEASE = _COMMON + """
if field('state', 'closed') == 'half_open' and redis.call('GET', probe_key) == ARGV[3] then
  redis.call('DEL', probe_key)
  return changed('released')
end
return snapshot('ignored')
"""

# ARGV: channel, name, reason, node
OPEN_IF_CLOSED = _COMMON + """
if field('state', 'closed') == 'closed' then
  transition('open', ARGV[3], ARGV[4])
  return changed('opened')
end
return snapshot('ignored')
"""
