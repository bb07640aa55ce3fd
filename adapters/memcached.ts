import { SessionConfigError } from "../src/index.js";
import { scrubError } from "../src/core/errors.js";
import type { CompareAndSetResult, SessionStore, StoreCapabilities, VersionedRecord } from "../src/index.js";
import { CAS_ROUNDS, casToken, casVersion } from "./memcached/cas.js";
import { positiveSeconds } from "./memcached/client.js";
import { MemcachedStoreError } from "./memcached/errors.js";
import { checkKeyPrefix, sessionKey } from "./memcached/keys.js";
import { expirationExtras, NO_EXTRAS, Opcode, Status, storageExtras } from "./memcached/protocol.js";
import { whenMemcachedReady, type ReadyClientLike } from "./memcached/ready.js";
import { sendRequest, serverOf, statusError, type MemcachedRequest, type MemjsClientLike, type MemjsResponse } from "./memcached/request.js";
import { guardStaleSockets } from "./memcached/stale-sockets.js";

export { createMemcachedClient, useKetama, type MemcachedClientOptions } from "./memcached/client.js";
export { MemcachedStoreError, type MemcachedStoreErrorCode } from "./memcached/errors.js";
export { MEMCACHED_MAX_KEY_BYTES } from "./memcached/keys.js";
export { MEMCACHED_MAX_RELATIVE_TTL, memcachedExpiration } from "./memcached/protocol.js";
export type { MemjsClientLike, MemjsResponse } from "./memcached/request.js";

/** Options of {@link MemcachedStore}. */
export interface MemcachedStoreOptions {
  /**
   * A `memjs` client for one server or many, such as one from {@link createMemcachedClient}.
   * The store never closes it: the client belongs to the caller. On a memjs 1.x client it does patch
   * each server's socket handling, so that a dropped socket's late close cannot make memjs lose the
   * first request after a hung server resumes.
   */
  client: MemjsClientLike;
  /**
   * Prefix of every key (`prefix + sessionId`). Prefix and id together must fit memcached's
   * 250-byte key limit and hold no space or control character; the prefix is checked here, each key
   * before it is sent.
   * @default "sess:"
   */
  prefix?: string;
  /**
   * Seconds any one store call may take, retries included, before it rejects with a
   * `MemcachedStoreError` (code `ERR_MEMCACHED_TIMEOUT`). memjs's own timeout is not enough: it is
   * an idle timer on the socket, which steady traffic to a hung server keeps pushing back. Keep it
   * below the session manager's `storeTimeout`, so the error that reaches the app names the cause.
   * Fractions allowed.
   * @default 1
   */
  timeout?: number;
  /**
   * Read with memcached's get-and-touch (binary opcode `0x1d`): a read resets the TTL in the same
   * round trip (`capabilities.refreshOnGet: true`). With `false` the store uses a plain get, and the
   * session manager rewrites a session once per `touchAfter` to keep it alive. Needs memcached
   * 1.4.8 or newer (the same servers that support `touch`).
   * @default true
   */
  getAndTouch?: boolean;
  /**
   * Write a loaded session with memcached's compare-and-set (`capabilities.compareAndSet: true`):
   * the read that loaded the session also brought the item's CAS token, and the `replace` carries
   * it, so it writes only if nobody wrote in between. On a conflict the session manager merges per
   * top-level key and retries, so parallel requests of one user never erase each other's changes.
   * Through the session manager this costs nothing extra: a changed session is one read and one
   * write, as with `false`. (Called directly without a version, a compare-and-set first reads the
   * token: one more round trip.)
   *
   * With `false`, a write is a plain `replace`: the last whole-record write wins (a parallel
   * request's change can be lost). A destroyed or expired
   * session is never written back either way. Needs a server with CAS enabled (not `memcached -C`);
   * a server without it fails writes with `ERR_MEMCACHED_NO_CAS`.
   * @default true
   */
  compareAndSet?: boolean;
}

/**
 * A {@link SessionStore} on memcached through a `memjs` client, for one server or many (keys are
 * spread by the client's hashing).
 *
 * - create = `add` (an existing id is refused), update = `replace` (a destroyed or expired session
 *   is never written back), touch = `touch`, destroy = `delete`;
 * - compare-and-set (unless `compareAndSet: false`) = a `replace` carrying the CAS token the read
 *   returned (`getVersioned`), so concurrent writes of one session are merged, not lost; without a
 *   token, or when the item changed since, a binary `get` for the current record and token first;
 * - reads use get-and-touch (one round trip that also resets the TTL) unless `getAndTouch: false`;
 * - TTLs above 30 days are sent as absolute Unix time, as memcached requires;
 * - every call rejects within `timeout` seconds, with a {@link MemcachedStoreError};
 * - no listing or owner index: memcached cannot enumerate keys, so these capabilities are declared
 *   `false` and the session manager refuses what needs them.
 *
 * Memcached is a cache: it evicts items when memory runs out, sessions included. Size it so that
 * sessions are not evicted (watch the `evictions` stat), or use Redis.
 *
 * @example
 * import { MemcachedStore, createMemcachedClient } from "shared-session/memcached";
 * const client = createMemcachedClient(["10.0.0.1:11211", "10.0.0.2:11211"]);
 * const store = new MemcachedStore({ client });
 */
export class MemcachedStore implements SessionStore {
  readonly name = "MemcachedStore";
  readonly capabilities: StoreCapabilities;
  /** Prefix of every key. */
  readonly prefix: string;
  /** Seconds a call may take before it rejects. */
  readonly timeout: number;
  /**
   * Write `record` only if the stored record is exactly `expected` (memcached CAS): a binary `get`
   * reads the current value with its CAS token, a `replace` carrying the token writes it. Resolves
   * `written`, `missing` (destroyed or expired: never written back) or `conflict` with the current
   * record. With the `version` {@link getVersioned} returned with `expected`, one round trip when
   * nobody else wrote; without one, two. `undefined` with `compareAndSet: false`.
   */
  readonly compareAndSet?: (id: string, expected: string, record: string, ttl: number, version?: string) => Promise<CompareAndSetResult>;
  readonly #client: MemjsClientLike;
  readonly #prefixBytes: number;

  constructor(options: MemcachedStoreOptions) {
    if (typeof options !== "object" || options === null) throw new SessionConfigError("MemcachedStore: options are required: { client }");
    const client = options.client;
    if (typeof client !== "object" || client === null || typeof client.perform !== "function" || typeof client.incrSeq !== "function") {
      throw new SessionConfigError("MemcachedStore: client must be a memjs Client (memjs.Client.create(...) or createMemcachedClient(...))");
    }
    const prefix = options.prefix ?? "sess:";
    this.#prefixBytes = checkKeyPrefix(prefix);
    const getAndTouch = options.getAndTouch ?? true;
    if (typeof getAndTouch !== "boolean") throw new SessionConfigError(`MemcachedStore: getAndTouch must be a boolean, got ${String(getAndTouch)}`);
    const compareAndSet = options.compareAndSet ?? true;
    if (typeof compareAndSet !== "boolean") throw new SessionConfigError(`MemcachedStore: compareAndSet must be a boolean, got ${String(compareAndSet)}`);
    guardStaleSockets(client);
    this.#client = client;
    this.prefix = prefix;
    this.timeout = positiveSeconds("timeout", options.timeout, 1);
    this.capabilities = Object.freeze({ refreshOnGet: getAndTouch, list: false, compareAndSet, ownerIndex: false });
    // Present only when declared: the session manager (and the conformance suite) check both agree.
    if (compareAndSet) this.compareAndSet = (id, expected, record, ttl, version) => this.#compareAndSet(id, expected, record, ttl, version);
  }

  /**
   * Resolves once every server of the client answers a NOOP within `timeout` seconds; rejects with a
   * `MemcachedStoreError` (`ERR_MEMCACHED_CONNECTION`) naming each server that did not, and why. The
   * session manager's `ready()` and `isReady()` call it.
   */
  async ready(timeout: number): Promise<void> {
    try {
      await whenMemcachedReady(this.#client as MemjsClientLike & ReadyClientLike, Math.ceil(timeout * 1000));
    } catch (err) {
      // Scrubbed here: a SessionError passes the core's scrubError as it is.
      throw new MemcachedStoreError("ERR_MEMCACHED_CONNECTION", err instanceof Error ? err.message : String(err), { cause: scrubError(err) });
    }
  }

  /**
   * The record under `id`, or `null`. With `ttl` and `getAndTouch` on, the TTL is reset in the same
   * round trip (get-and-touch); the session manager passes `ttl` only when `capabilities.refreshOnGet`.
   */
  async get(id: string, ttl?: number): Promise<string | null> {
    const response = await this.#read(id, ttl);
    return response === null ? null : response.val.toString("utf8");
  }

  /**
   * {@link get} with the item's CAS token as its version. The session manager reads through this
   * (when `compareAndSet` is on) and passes the version back to {@link compareAndSet}, whose write
   * then carries that token at once: a changed session costs the read and one CAS `replace`, not a
   * second read for the token first.
   */
  async getVersioned(id: string, ttl?: number): Promise<VersionedRecord | null> {
    const response = await this.#read(id, ttl);
    if (response === null) return null;
    const record = response.val.toString("utf8");
    const version = casVersion(response.header.cas);
    return version === undefined ? { record } : { record, version };
  }

  async #read(id: string, ttl: number | undefined): Promise<MemjsResponse | null> {
    const key = this.#key(id);
    const touch = ttl !== undefined && this.capabilities.refreshOnGet;
    const operation = touch ? "get-and-touch" : "get";
    const response = touch
      ? await this.#send({ operation, opcode: Opcode.GAT, key, extras: expirationExtras(ttl) })
      : await this.#send({ operation, opcode: Opcode.GET, key, extras: NO_EXTRAS });
    const status = response.header.status;
    if (status === Status.OK) return response;
    if (status === Status.NOT_FOUND) return null;
    throw statusError(this.#client, operation, key, status);
  }

  /** `add`: stores `record` only if `id` is absent; `false` when it exists. */
  async create(id: string, record: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send({ operation: "add", opcode: Opcode.ADD, key, extras: storageExtras(ttl), value: record })).header.status;
    if (status === Status.OK) return true;
    if (status === Status.EXISTS) return false;
    throw statusError(this.#client, "add", key, status, record);
  }

  /** `replace`: stores `record` only if `id` exists; `false` (nothing written) when it does not. */
  async update(id: string, record: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send({ operation: "replace", opcode: Opcode.REPLACE, key, extras: storageExtras(ttl), value: record })).header.status;
    if (status === Status.OK) return true;
    if (status === Status.NOT_FOUND) return false;
    throw statusError(this.#client, "replace", key, status, record);
  }

  /** `touch`: resets the TTL of `id`; `false` when it does not exist. */
  async touch(id: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send({ operation: "touch", opcode: Opcode.TOUCH, key, extras: expirationExtras(ttl) })).header.status;
    if (status === Status.OK) return true;
    if (status === Status.NOT_FOUND) return false;
    throw statusError(this.#client, "touch", key, status);
  }

  /** `delete`: removes `id`; an absent id is fine. */
  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    const status = (await this.#send({ operation: "delete", opcode: Opcode.DELETE, key, extras: NO_EXTRAS })).header.status;
    if (status !== Status.OK && status !== Status.NOT_FOUND) throw statusError(this.#client, "delete", key, status);
  }

  async #compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
    const key = this.#key(id);
    const extras = storageExtras(ttl);
    const token = typeof version === "string" ? casToken(version) : undefined;
    if (token !== undefined) {
      // The token came with `expected`: while the item still has it, it still holds `expected`.
      const result = await this.#casReplace(key, extras, record, token);
      if (result !== null) return result;
      // Written since: compare the records themselves (rewritten with the same bytes still matches).
    }
    // Compared as bytes: what the server holds is UTF-8, and so is what the core wrote or loaded.
    const wanted = Buffer.from(expected, "utf8");
    let current = "";
    for (let round = 0; round < CAS_ROUNDS; round++) {
      // A plain get (not get-and-touch): it returns the CAS token and leaves the TTL to the write.
      const read = await this.#send({ operation: "get (compare-and-set)", opcode: Opcode.GET, key, extras: NO_EXTRAS });
      const readStatus = read.header.status;
      if (readStatus === Status.NOT_FOUND) return { status: "missing" };
      if (readStatus !== Status.OK) throw statusError(this.#client, "get (compare-and-set)", key, readStatus);
      if (!read.val.equals(wanted)) {
        const currentVersion = casVersion(read.header.cas);
        const conflict = read.val.toString("utf8");
        return currentVersion === undefined ? { status: "conflict", current: conflict } : { status: "conflict", current: conflict, version: currentVersion };
      }
      current = expected;
      const cas = read.header.cas;
      // A zero token in the request would make the replace unconditional: refuse instead.
      if (cas === undefined || casVersion(cas) === undefined) {
        const server = serverOf(this.#client, key);
        throw new MemcachedStoreError(
          "ERR_MEMCACHED_NO_CAS",
          `${server ?? "the server"} returned no CAS token (memcached started with -C?); use a server with CAS or compareAndSet: false`,
          { server },
        );
      }
      const result = await this.#casReplace(key, extras, record, Buffer.from(cas));
      if (result !== null) return result;
      // Someone wrote in between: read again, which reports the conflict (or, if they wrote the same bytes, retries).
    }
    return { status: "conflict", current };
  }

  /**
   * A `replace` carrying a nonzero CAS token: the server writes only if the item still has it.
   * `null` when it does not (someone wrote since the token was read).
   */
  async #casReplace(key: string, extras: Buffer, record: string, token: Buffer): Promise<CompareAndSetResult | null> {
    const response = await this.#send({ operation: "compare-and-set", opcode: Opcode.REPLACE, key, extras, value: record, casToken: token });
    const status = response.header.status;
    if (status === Status.OK) {
      const version = casVersion(response.header.cas);
      return version === undefined ? { status: "written" } : { status: "written", version };
    }
    if (status === Status.NOT_FOUND) return { status: "missing" };
    if (status === Status.EXISTS) return null;
    throw statusError(this.#client, "compare-and-set", key, status, record);
  }

  #key(id: string): string {
    return sessionKey(this.prefix, this.#prefixBytes, id);
  }

  /** Send one request to the key's server; rejects within `timeout`, whatever memjs does. */
  #send(request: MemcachedRequest): Promise<MemjsResponse> {
    return sendRequest(this.#client, this.timeout, request);
  }
}
