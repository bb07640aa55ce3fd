import type { OwnerEntry, OwnerIndex } from "../../src/index.js";
import type { RedisCommands } from "./commands.js";
import { RedisStoreError } from "./errors.js";
import { OWNER_ADD, OWNER_ADD_CAPPED, OWNER_ENTRIES, OWNER_TOUCH } from "./lua.js";
import type { CommandRunner } from "./runner.js";

/**
 * RedisStore's owner index (`owners`, for the manager's `owner` option): one sorted set per owner at
 * `<prefix>owner:<owner>` (`{`, `}` and `%` in the owner percent-encoded), members the session ids,
 * scores their deadlines in Unix ms (absolute; of activity under `maxSessionsPerOwner`'s
 * `"evict-least-active"`, re-scored by `owners.touch`). It expires with its last session and drops
 * stale members whenever it is written or read.
 */

/**
 * Owner index keys live at `<prefix>owner:<owner>`. Session ids never start with this (the store
 * refuses them), so the two kinds of key cannot collide.
 */
export const OWNER_NAMESPACE = "owner:";
/** Longest owner id, in characters, before escaping. */
const MAX_OWNER_LENGTH = 1024;

/** Session ids in the owner index's namespace would name an index key: refused before anything is sent. */
export function checkSessionId(operation: string, id: string): void {
  if (id.startsWith(OWNER_NAMESPACE)) {
    throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: session ids may not start with "${OWNER_NAMESPACE}" (owner indexes live there)`);
  }
}

/**
 * Key of an owner's index. `{` and `}` are percent-encoded (with `%` itself) so that an owner id
 * cannot pick its Cluster slot through a hash tag; distinct owners still get distinct keys.
 */
export function ownerKey(prefix: string, operation: string, owner: string): string {
  if (typeof owner !== "string" || owner.length === 0 || owner.length > MAX_OWNER_LENGTH) {
    throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: ${operation} needs an owner id of 1 to ${MAX_OWNER_LENGTH} characters`);
  }
  return prefix + OWNER_NAMESPACE + owner.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The owner index of a RedisStore whose session keys are `<prefix><id>`: `add`, `addCapped`, `touch`
 * and `entries` are one Lua script each on the owner's sorted set, `remove` one `ZREM`. The deadlines
 * it compares with "now" come from the app's clock, as the core computes them.
 */
export function redisOwnerIndex(prefix: string, commands: RedisCommands, runner: CommandRunner): OwnerIndex {
  return {
    add: async (owner, id, expiresAt) => {
      const key = ownerKey(prefix, "owners.add", owner);
      checkSessionId("owners.add", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.add", `RedisStore: owners.add needs a deadline in whole Unix milliseconds, got ${String(expiresAt)}`);
      }
      await runner.script("owners.add", OWNER_ADD, key, id, expiresAt, Date.now());
    },
    remove: async (owner, id) => {
      const key = ownerKey(prefix, "owners.remove", owner);
      await runner.run("owners.remove", () => commands.zrem(key, id));
    },
    entries: async (owner) => {
      const key = ownerKey(prefix, "owners.entries", owner);
      const reply = await runner.script("owners.entries", OWNER_ENTRIES, key, Date.now());
      if (!Array.isArray(reply) || reply.length % 2 !== 0) {
        throw new RedisStoreError("ERR_REDIS_COMMAND", "owners.entries", "RedisStore: owners.entries got an unexpected reply");
      }
      const entries: OwnerEntry[] = [];
      for (let i = 0; i < reply.length; i += 2) entries.push({ id: String(reply[i]), expiresAt: Number(reply[i + 1]) });
      return entries;
    },
    addCapped: async (owner, id, expiresAt, limit, policy) => {
      const key = ownerKey(prefix, "owners.add", owner);
      checkSessionId("owners.add", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || !Number.isSafeInteger(limit) || limit < 1) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.add", "RedisStore: owners.add needs a deadline in whole Unix milliseconds and a limit >= 1");
      }
      // One script on the owner's sorted set: atomic, so parallel logins cannot overshoot the limit.
      const reply = await runner.script("owners.add", OWNER_ADD_CAPPED, key, id, expiresAt, Date.now(), limit, policy);
      if (!Array.isArray(reply) || reply.length === 0) throw new RedisStoreError("ERR_REDIS_COMMAND", "owners.add", "RedisStore: owners.add got an unexpected reply");
      return { added: Number(reply[0]) === 1, evicted: reply.slice(1).map(String) };
    },
    touch: async (owner, id, expiresAt) => {
      const key = ownerKey(prefix, "owners.touch", owner);
      checkSessionId("owners.touch", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.touch", `RedisStore: owners.touch needs a deadline in whole Unix milliseconds, got ${String(expiresAt)}`);
      }
      // One script (ZADD XX GT, and the key's expiry when this member became the latest); the manager sends it with the record's write.
      await runner.script("owners.touch", OWNER_TOUCH, key, id, expiresAt);
    },
  };
}
