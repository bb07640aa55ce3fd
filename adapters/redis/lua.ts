import { createHash } from "node:crypto";

/**
 * Compare-and-set on one key (so it runs on any Cluster node).
 * KEYS[1] = session key, ARGV[1] = expected record, ARGV[2] = new record, ARGV[3] = TTL in seconds.
 * Returns 0 when the key is missing, 1 when the record was written, or the current record (a string)
 * on a conflict. Scripts are atomic: nothing runs between the GET and the SET.
 */
export const COMPARE_AND_SET_LUA = `local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'XX', 'EX', ARGV[3])
  return 1
end
return current
`;

/** SHA-1 of the script, as `EVALSHA` names it. */
export const COMPARE_AND_SET_SHA = createHash("sha1").update(COMPARE_AND_SET_LUA).digest("hex");
