import { createHash } from "node:crypto";

/** A Lua script and the SHA-1 `EVALSHA` names it by. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): LuaScript {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * Length of the version tag the store puts in front of the records it tags (see `./version.ts`):
 * a `~` and 11 base64url characters.
 */
export const TAG_LENGTH = 12;

/**
 * Compare-and-set on one key (so it runs on any Cluster node), comparing whole records: used when
 * the caller has no version of `expected`, or for records stored without a tag.
 * KEYS[1] = session key, ARGV[1] = expected record (untagged), ARGV[2] = new value, ARGV[3] = TTL
 * in seconds. A stored value that starts with a version tag is compared without it.
 * Returns 0 when the key is missing, 1 when the value was written, or the current value (a string,
 * with its tag) on a conflict. Scripts are atomic: nothing runs between the GET and the SET.
 */
export const COMPARE_AND_SET = script(`local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local record = current
if string.find(current, '^~${"[%w_%-]".repeat(TAG_LENGTH - 1)}') then
  record = string.sub(current, ${TAG_LENGTH + 1})
end
if record == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'XX', 'EX', ARGV[3])
  return 1
end
return current
`);

/**
 * Compare-and-set on one key by version tag: only the first ${TAG_LENGTH} bytes of the stored value
 * are read and compared, so the expected record is neither sent nor compared. KEYS[1] = session key,
 * ARGV[1] = expected tag, ARGV[2] = new value, ARGV[3] = TTL in seconds. Returns 1 when written, 0
 * when the key is missing, or the current value on a conflict (the caller then compares records, in
 * case the same bytes were rewritten under a new tag).
 *
 * What it costs Redis 7.0 (instructions per call under callgrind, bench/lua-cost.ts): every byte
 * that enters Lua, as an argument or a reply, costs about 11 instructions (interning the string,
 * `lua_pushlstring` in the profile), so `GETRANGE` of the tag instead of `GET` of the whole value
 * saves that on the stored record (150-byte record 36.9k → 34.4k, 4 KB 124.6k → 78.7k; a plain
 * `SET` 9-10k). The range is given as strings: a Lua number argument is formatted with `snprintf`
 * (4k instructions for the two). `SET` needs no `XX`: the key was just read in the same atomic
 * script. The whole value is read only on a conflict or a missing key (`GET` returns nil: 0).
 */
export const COMPARE_VERSION_AND_SET = script(`local tag = redis.call('GETRANGE', KEYS[1], '0', '${TAG_LENGTH - 1}')
if tag == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return redis.call('GET', KEYS[1]) or 0
`);

/**
 * Add a session to an owner's index, a sorted set on one key (Cluster-safe).
 * KEYS[1] = owner key, ARGV[1] = session id, ARGV[2] = its absolute deadline (Unix ms, the score),
 * ARGV[3] = now (Unix ms, the caller's clock, the same clock the deadlines come from).
 * Drops members whose deadline has passed, then sets the key to expire at the latest deadline left,
 * so the index disappears with its last session. Returns the number of live members.
 */
export const OWNER_ADD = script(`redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return redis.call('ZCARD', KEYS[1])
`);

/**
 * The live members of an owner's index, soonest deadline first, after dropping the stale ones.
 * KEYS[1] = owner key, ARGV[1] = now (Unix ms). Returns `[id, deadline, id, deadline, ...]`.
 */
export const OWNER_ENTRIES = script(`redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], '(' .. ARGV[1], '+inf', 'BYSCORE', 'WITHSCORES')
`);

/**
 * {@link OWNER_ADD} capped at a number of live members, atomically (parallel logins cannot overshoot).
 * KEYS[1] = owner key, ARGV[1] = session id, ARGV[2] = its deadline (Unix ms), ARGV[3] = now (Unix ms),
 * ARGV[4] = limit, ARGV[5] = `refuse` or `evict-least-active`. An id already present is re-scored, never
 * refused. Returns `{0}` when refused, else `{1, evicted...}` (the members removed to make room, earliest
 * deadline first).
 */
export const OWNER_ADD_CAPPED = script(`redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local limit = tonumber(ARGV[4])
local out = {1}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local count = redis.call('ZCARD', KEYS[1])
  if count >= limit then
    if ARGV[5] == 'refuse' then
      return {0}
    end
    local evicted = redis.call('ZRANGE', KEYS[1], 0, count - limit)
    for _, member in ipairs(evicted) do
      redis.call('ZREM', KEYS[1], member)
      out[#out + 1] = member
    end
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return out
`);

/**
 * Move an existing member's deadline later (`ZADD XX GT`: never adds, never lowers); when it became
 * the latest member, the key expires at it (the other scripts keep the key living to its latest member,
 * so otherwise it already outlives this one). KEYS[1] = owner key, ARGV[1] = session id, ARGV[2] = its
 * new deadline (Unix ms). Returns 1 when the member was re-scored.
 */
export const OWNER_TOUCH = script(`if redis.call('ZADD', KEYS[1], 'XX', 'GT', 'CH', ARGV[2], ARGV[1]) == 0 then
  return 0
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1)
if last[1] == ARGV[1] then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`);
