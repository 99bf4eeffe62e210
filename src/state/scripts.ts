import { defineScript, type CommandParser } from '@redis/client';

/*
 * The Redis side of the StateStore: every decision is one Lua script, so it is atomic across
 * replicas (Redis runs a script alone) — never a read then a write from the gateway. Scripts
 * take the time from Redis (TIME), so replicas with skewed clocks still agree. node-redis runs
 * them with EVALSHA and falls back to EVAL on NOSCRIPT (after a Redis restart or SCRIPT FLUSH).
 *
 * Hand-written rather than taken from a library: @fastify/rate-limit's Redis store is a fixed
 * window (INCR + PEXPIRE: up to 2N requests around a window edge), is written for ioredis (a
 * second Redis client) and, when Redis fails, either errors or stops limiting (skipOnError) —
 * no per-replica fallback, and no threat model. The sliding-window log below is exact: at most
 * N hits in any window of W, however the hits are spread over replicas.
 */

/** Redis time in milliseconds, inside a script. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const str = (v: unknown) => String(v);

/**
 * Sliding-window log over one or more windows, checked in order in one atomic step. KEYS: a
 * sorted set of accepted hits per window (score: Redis ms). ARGV: a unique member, then limit
 * and windowMs per key. Each window counts the hit only when every window before it allowed
 * it; the first refusal stops. Returns {allowed 0/1, count in window, ms until the oldest hit
 * leaves} per window checked.
 */
export const SLIDING_WINDOW = defineScript({
  SCRIPT: `${NOW}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local allowed = 0
  if count < limit then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, window)
    count = count + 1
    allowed = 1
  end
  local reset = 0
  if count > 0 then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
  out[#out + 1] = allowed
  out[#out + 1] = count
  out[#out + 1] = reset
  if allowed == 0 then break end
end
return out`,
  parseCommand(parser: CommandParser, keys: readonly string[], limitsAndWindows: readonly number[], member: string) {
    parser.pushKeysLength([...keys]); // the count, then the keys
    parser.push(member, ...limitsAndWindows.map(str));
  },
  transformReply: (reply: unknown) => {
    const flat = reply as number[];
    const out: Array<{ allowed: boolean; count: number; resetMs: number }> = [];
    for (let i = 0; i + 2 < flat.length; i += 3) out.push({ allowed: flat[i] === 1, count: Number(flat[i + 1]), resetMs: Number(flat[i + 2]) });
    return out;
  },
});

/**
 * Decaying score. KEYS[1] a hash {v, t}, KEYS[2] the set of distinct members seen.
 * ARGV amount, halfLifeMs, distinct member ('' for none), max distinct members, ttlMs.
 * Returns {before, after} as strings (Lua numbers would be truncated to integers).
 */
export const ADD_SCORE = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
local amount = tonumber(ARGV[1])
local half = tonumber(ARGV[2])
local ttl = tonumber(ARGV[5])
if ARGV[3] ~= '' then
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[4]) then
    if redis.call('SADD', KEYS[2], ARGV[3]) == 0 then amount = 0 end
  end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
local before = 0
if cur[1] then
  before = tonumber(cur[1])
  local elapsed = now - tonumber(cur[2])
  if elapsed > 0 then before = before * math.pow(2, -elapsed / half) end
end
local after = before + amount
redis.call('HSET', KEYS[1], 'v', string.format('%.6f', after), 't', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return {string.format('%.6f', before), string.format('%.6f', after)}`,
  parseCommand(parser: CommandParser, key: string, distinctKey: string, amount: number, halfLifeMs: number, member: string, maxDistinct: number, ttlMs: number) {
    parser.pushKeys([key, distinctKey]);
    parser.push(str(amount), str(halfLifeMs), member, str(maxDistinct), str(ttlMs));
  },
  transformReply: (reply: unknown) => {
    const [before, after] = reply as string[];
    return { before: Number(before), after: Number(after) };
  },
});

/** Set a decaying score (ARGV value, ttlMs); 0 or less deletes it and its distinct members. */
export const SET_SCORE = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
local value = tonumber(ARGV[1])
if value <= 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('HSET', KEYS[1], 'v', string.format('%.6f', value), 't', now)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1`,
  parseCommand(parser: CommandParser, key: string, distinctKey: string, value: number, ttlMs: number) {
    parser.pushKeys([key, distinctKey]);
    parser.push(str(value), str(ttlMs));
  },
  transformReply: () => undefined,
});

/** INCR with a TTL refreshed on each increment. */
export const INCREMENT = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `local v = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return v`,
  parseCommand(parser: CommandParser, key: string, ttlMs: number) {
    parser.pushKey(key);
    parser.push(str(ttlMs));
  },
  transformReply: (reply: unknown) => Number(reply),
});

/** SET NX PX: {1, ttlMs} for the one caller that took the key, else {0, what the holder has left}. ARGV ttlMs. */
export const CLAIM = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[1])) then return {1, tonumber(ARGV[1])} end
return {0, redis.call('PTTL', KEYS[1])}`,
  parseCommand(parser: CommandParser, key: string, ttlMs: number) {
    parser.pushKey(key);
    parser.push(str(ttlMs));
  },
  transformReply: (reply: unknown) => {
    const [claimed, ttl] = reply as [number, number];
    return { claimed: Number(claimed) === 1, ttlMs: Math.max(0, Number(ttl)) };
  },
});

/** Drop the expired entries of an expiring set (KEYS[1] zset of deadlines, KEYS[2] hash of values). */
const PRUNE = `local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[2], id) end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end`;

/** Put an entry in an expiring set. ARGV id, value, ttlMs. */
export const PUT_ENTRY = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
${PRUNE}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`,
  parseCommand(parser: CommandParser, zkey: string, hkey: string, id: string, value: string, ttlMs: number) {
    parser.pushKeys([zkey, hkey]);
    parser.push(id, value, str(ttlMs));
  },
  transformReply: () => undefined,
});

/** Remove an entry; 1 when it was there and not expired. ARGV id. */
export const DELETE_ENTRY = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if deadline and tonumber(deadline) > now then return 1 end
return 0`,
  parseCommand(parser: CommandParser, zkey: string, hkey: string, id: string) {
    parser.pushKeys([zkey, hkey]);
    parser.push(id);
  },
  transformReply: (reply: unknown) => Number(reply) === 1,
});

/** The live entries, soonest to expire first: flat {id, value, ttlMs, ...}. ARGV max. */
export const LIST_ENTRIES = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
${PRUNE}
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #rows, 2 do
  local value = redis.call('HGET', KEYS[2], rows[i])
  if value then
    out[#out + 1] = rows[i]
    out[#out + 1] = value
    out[#out + 1] = tostring(tonumber(rows[i + 1]) - now)
  end
end
return out`,
  parseCommand(parser: CommandParser, zkey: string, hkey: string, max: number) {
    parser.pushKeys([zkey, hkey]);
    parser.push(str(max));
  },
  transformReply: (reply: unknown) => {
    const flat = reply as string[];
    const out: Array<{ id: string; value: string; ttlMs: number }> = [];
    for (let i = 0; i + 2 < flat.length; i += 3) out.push({ id: flat[i]!, value: flat[i + 1]!, ttlMs: Number(flat[i + 2]) });
    return out;
  },
});

/**
 * Compare-and-set of an expiring set's entry: replace it only when it holds `expected` now
 * (ARGV[2] '0': only when absent). {1} replaced, {0} not. ARGV id, expectPresent, expected, value, ttlMs.
 */
export const REPLACE_ENTRY = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
${PRUNE}
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] == '0' then
  if cur then return 0 end
elseif (not cur) or cur ~= ARGV[3] then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 1`,
  parseCommand(parser: CommandParser, zkey: string, hkey: string, id: string, expected: string | null, value: string, ttlMs: number) {
    parser.pushKeys([zkey, hkey]);
    parser.push(id, expected === null ? '0' : '1', expected ?? '', value, str(ttlMs));
  },
  transformReply: (reply: unknown) => Number(reply) === 1,
});

export const SCRIPTS = {
  gwSlidingWindow: SLIDING_WINDOW,
  gwAddScore: ADD_SCORE,
  gwSetScore: SET_SCORE,
  gwIncrement: INCREMENT,
  gwClaim: CLAIM,
  gwPutEntry: PUT_ENTRY,
  gwDeleteEntry: DELETE_ENTRY,
  gwListEntries: LIST_ENTRIES,
  gwReplaceEntry: REPLACE_ENTRY,
};
