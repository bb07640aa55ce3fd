import { EventEmitter } from "node:events";
import memjs from "memjs";
import { SessionConfigError } from "../src/index.js";
import { scrubError } from "../src/core/errors.js";
import type { CompareAndSetResult, SessionStore, StoreCapabilities, VersionedRecord } from "../src/index.js";
import { bounded } from "../src/core/bounded.js";
import { whenMemcachedReady, type ReadyClientLike } from "./memcached/ready.js";
import { KetamaContinuum } from "./memcached/ketama.js";

/**
 * The longest TTL memcached reads as "seconds from now" (30 days). A larger expiration is read as
 * an absolute Unix time, so the store sends longer TTLs as `now + ttl`.
 */
export const MEMCACHED_MAX_RELATIVE_TTL = 2_592_000;

/** Longest key memcached accepts, in bytes. */
export const MEMCACHED_MAX_KEY_BYTES = 250;

/**
 * Rounds of get + CAS-replace one `compareAndSet` call makes when the item's CAS token changed but its
 * value still equals `expected` (someone rewrote the same bytes in between). After that the call
 * reports a conflict and the session manager's own bounded retry takes over.
 */
const CAS_ROUNDS = 10;

// Binary protocol opcodes (memcached protocol_binary.h).
const OP_GET = 0x00;
const OP_ADD = 0x02;
const OP_REPLACE = 0x03;
const OP_DELETE = 0x04;
const OP_TOUCH = 0x1c;
const OP_GAT = 0x1d;

// Binary protocol response statuses.
const STATUS_OK = 0x00;
const STATUS_NOT_FOUND = 0x01;
const STATUS_EXISTS = 0x02;
const STATUS_TOO_LARGE = 0x03;
const STATUS_UNKNOWN_COMMAND = 0x81;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  0x01: "key not found",
  0x02: "key exists",
  0x03: "value too large",
  0x04: "invalid arguments",
  0x05: "item not stored",
  0x06: "incr/decr on a non-numeric value",
  0x07: "the vbucket belongs to another server",
  0x08: "authentication error",
  0x09: "authentication continue",
  0x20: "authentication required or failed",
  0x81: "unknown command",
  0x82: "out of memory",
  0x83: "not supported",
  0x84: "internal error",
  0x85: "busy",
  0x86: "temporary failure",
};

/** Control characters and space: memcached keys cannot hold them. */
// eslint-disable-next-line no-control-regex -- these are exactly the bytes memcached refuses in keys
const BAD_KEY_CHAR = /[\u0000-\u0020\u007f]/;
const NO_EXTRAS = Buffer.alloc(0);

/** One binary-protocol response as memjs parses it. */
export interface MemjsResponse {
  /** `cas`: the item's 8-byte CAS token (all zero when the answer carries none). */
  readonly header: { readonly status: number; readonly opcode: number; readonly cas?: Buffer };
  readonly val: Buffer;
}

/**
 * The part of a `memjs` `Client` the store uses: `perform` sends one binary-protocol request to the
 * server that owns the key. A `memjs.Client` (one server or many) satisfies it.
 */
export interface MemjsClientLike {
  readonly seq: number;
  incrSeq(): void;
  perform(key: string, request: Buffer, seq: number, callback?: (err: Error | null, response?: MemjsResponse | null) => void, retries?: number): void;
  /** The server a key maps to (used in error messages only). */
  server(key: string): { readonly host: string; readonly port: number } | null | undefined;
}

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

/** Stable codes of {@link MemcachedStoreError}. */
export type MemcachedStoreErrorCode =
  /** The server did not answer within `timeout`. */
  | "ERR_MEMCACHED_TIMEOUT"
  /** The client could not reach the server (refused, reset, memjs's own timeout). */
  | "ERR_MEMCACHED_CONNECTION"
  /** The server answered with an error status. */
  | "ERR_MEMCACHED_STATUS"
  /** Prefix + id is not a valid memcached key. */
  | "ERR_MEMCACHED_KEY"
  /** A TTL that cannot be sent (not a whole number of seconds >= 1). */
  | "ERR_MEMCACHED_TTL"
  /** `compareAndSet` on a server that hands out no CAS tokens (`memcached -C`). */
  | "ERR_MEMCACHED_NO_CAS";

/** Failure of a {@link MemcachedStore} call. The session manager wraps it in a `StoreUnavailableError` (`cause`). */
export class MemcachedStoreError extends Error {
  readonly code: MemcachedStoreErrorCode;
  /** `host:port` of the server the key maps to, when known. */
  readonly server: string | undefined;
  /** Binary-protocol status the server answered, for `ERR_MEMCACHED_STATUS`. */
  readonly status: number | undefined;

  constructor(code: MemcachedStoreErrorCode, message: string, options: { server?: string; status?: number; cause?: unknown } = {}) {
    super(`MemcachedStore: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MemcachedStoreError";
    this.code = code;
    this.server = options.server;
    this.status = options.status;
  }
}

function positiveSeconds(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new SessionConfigError(`MemcachedStore: ${name} must be a number of seconds > 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Expiration field for a TTL: memcached reads values up to 30 days as relative seconds and larger
 * ones as absolute Unix time, so a 40-day TTL sent as-is would be a date in 1970, already expired.
 */
export function memcachedExpiration(ttl: number, nowMs: number = Date.now()): number {
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new MemcachedStoreError("ERR_MEMCACHED_TTL", `TTL must be a whole number of seconds >= 1, got ${String(ttl)} (0 would mean "never expires")`);
  }
  if (ttl <= MEMCACHED_MAX_RELATIVE_TTL) return ttl;
  const absolute = Math.floor(nowMs / 1000) + ttl;
  if (absolute > 0xffff_ffff) throw new MemcachedStoreError("ERR_MEMCACHED_TTL", `TTL of ${ttl}s reaches past what memcached can express (year 2106)`);
  return absolute;
}

/** A CAS token from a response header as a record version: 16 hex digits, or none for a zero or missing token. */
function versionOf(cas: Buffer | undefined): string | undefined {
  return cas !== undefined && cas.length === 8 && !cas.every((byte) => byte === 0) ? cas.toString("hex") : undefined;
}

/** A version back to the CAS token it came from; `undefined` for anything that is not one. */
function tokenOf(version: string): Buffer | undefined {
  return VERSION.test(version) && !ZERO_VERSION.test(version) ? Buffer.from(version, "hex") : undefined;
}

const VERSION = /^[0-9a-f]{16}$/;
const ZERO_VERSION = /^0{16}$/;

function expirationExtras(ttl: number, withFlags: boolean): Buffer {
  const extras = Buffer.alloc(withFlags ? 8 : 4); // flags (always 0), then expiration
  extras.writeUInt32BE(memcachedExpiration(ttl), withFlags ? 4 : 0);
  return extras;
}

/** What the stale-socket guard uses of a memjs 1.x `Server` (internals, checked before use). */
interface MemjsServerInternals {
  _socket?: unknown;
  sock: (...args: unknown[]) => unknown;
}

const guardedServers = new WeakSet<object>();

/**
 * Works around a memjs 1.x bug (`lib/memjs/server.js`, `Server.prototype.sock`): the "close" handler
 * of every socket sets `server._socket = undefined` (and the "error" handler calls `server.error()`)
 * even after memjs has dropped that socket on a request timeout and opened a newer one. A paused
 * server that resumes closes the dropped socket late; if that lands while the new socket connects,
 * memjs forgets the new socket and the request waiting on it is never sent (a store timeout, a 503).
 * Here a socket's memjs close and error handlers run only while it is still its server's socket:
 * a dropped socket's requests were already failed when memjs dropped it.
 *
 * Feature-detected and idempotent: a client or socket that does not look like memjs 1.x is left as
 * it is (today's behaviour).
 */
function guardStaleSockets(client: unknown): void {
  const servers = typeof client === "object" && client !== null ? (client as { servers?: unknown }).servers : undefined;
  if (!Array.isArray(servers)) return;
  for (const server of servers as unknown[]) {
    if (typeof server !== "object" || server === null || guardedServers.has(server)) continue;
    const internals = server as MemjsServerInternals;
    const sock = internals.sock;
    if (typeof sock !== "function") continue;
    guardedServers.add(server);
    internals.sock = function guardedSock(this: unknown, ...args: unknown[]): unknown {
      const before = internals._socket;
      const result = sock.apply(this, args);
      const socket = internals._socket;
      if (socket !== before && socket instanceof EventEmitter) onlyWhileCurrent(internals, socket);
      return result;
    };
  }
}

/** Gate the close and error handlers memjs just put on a new `socket` on it still being `server`'s. */
function onlyWhileCurrent(server: MemjsServerInternals, socket: EventEmitter): void {
  type Handler = (...args: unknown[]) => void;
  const handlers = [
    ["close", socket.listeners("close") as Handler[]],
    ["error", socket.listeners("error") as Handler[]],
  ] as const;
  // memjs 1.x adds exactly one of each in sock(); anything else is not the code this corrects.
  if (handlers.some(([, listeners]) => listeners.length !== 1)) return;
  for (const [event, listeners] of handlers) {
    const handler = listeners[0]!;
    socket.removeListener(event, handler);
    // Still a listener when stale: an "error" without one would crash the process.
    socket.on(event, function staleSafe(this: unknown, ...args: unknown[]) {
      if (server._socket === socket) handler.apply(this, args);
    });
  }
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
  readonly #timeoutMs: number;
  readonly #prefixBytes: number;

  constructor(options: MemcachedStoreOptions) {
    if (typeof options !== "object" || options === null) throw new SessionConfigError("MemcachedStore: options are required: { client }");
    const client = options.client;
    if (typeof client !== "object" || client === null || typeof client.perform !== "function" || typeof client.incrSeq !== "function") {
      throw new SessionConfigError("MemcachedStore: client must be a memjs Client (memjs.Client.create(...) or createMemcachedClient(...))");
    }
    const prefix = options.prefix ?? "sess:";
    if (typeof prefix !== "string" || BAD_KEY_CHAR.test(prefix)) {
      throw new SessionConfigError(`MemcachedStore: prefix must be a string without spaces or control characters, got ${JSON.stringify(prefix)}`);
    }
    this.#prefixBytes = Buffer.byteLength(prefix);
    if (this.#prefixBytes >= MEMCACHED_MAX_KEY_BYTES) {
      throw new SessionConfigError(`MemcachedStore: prefix is ${this.#prefixBytes} bytes; memcached keys (prefix + id) hold at most ${MEMCACHED_MAX_KEY_BYTES}`);
    }
    const getAndTouch = options.getAndTouch ?? true;
    if (typeof getAndTouch !== "boolean") throw new SessionConfigError(`MemcachedStore: getAndTouch must be a boolean, got ${String(getAndTouch)}`);
    const compareAndSet = options.compareAndSet ?? true;
    if (typeof compareAndSet !== "boolean") throw new SessionConfigError(`MemcachedStore: compareAndSet must be a boolean, got ${String(compareAndSet)}`);
    guardStaleSockets(client);
    this.#client = client;
    this.prefix = prefix;
    this.timeout = positiveSeconds("timeout", options.timeout, 1);
    this.#timeoutMs = Math.ceil(this.timeout * 1000);
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
      throw new MemcachedStoreError("ERR_MEMCACHED_CONNECTION", err instanceof Error ? err.message : String(err), { cause: err });
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
    const version = versionOf(response.header.cas);
    return version === undefined ? { record } : { record, version };
  }

  async #read(id: string, ttl: number | undefined): Promise<MemjsResponse | null> {
    const key = this.#key(id);
    const touch = ttl !== undefined && this.capabilities.refreshOnGet;
    const response = touch ? await this.#send("get-and-touch", OP_GAT, key, expirationExtras(ttl, false)) : await this.#send("get", OP_GET, key, NO_EXTRAS);
    const status = response.header.status;
    if (status === STATUS_OK) return response;
    if (status === STATUS_NOT_FOUND) return null;
    throw this.#statusError(touch ? "get-and-touch" : "get", key, status);
  }

  /** `add`: stores `record` only if `id` is absent; `false` when it exists. */
  async create(id: string, record: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send("add", OP_ADD, key, expirationExtras(ttl, true), record)).header.status;
    if (status === STATUS_OK) return true;
    if (status === STATUS_EXISTS) return false;
    throw this.#statusError("add", key, status, record);
  }

  /** `replace`: stores `record` only if `id` exists; `false` (nothing written) when it does not. */
  async update(id: string, record: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send("replace", OP_REPLACE, key, expirationExtras(ttl, true), record)).header.status;
    if (status === STATUS_OK) return true;
    if (status === STATUS_NOT_FOUND) return false;
    throw this.#statusError("replace", key, status, record);
  }

  /** `touch`: resets the TTL of `id`; `false` when it does not exist. */
  async touch(id: string, ttl: number): Promise<boolean> {
    const key = this.#key(id);
    const status = (await this.#send("touch", OP_TOUCH, key, expirationExtras(ttl, false))).header.status;
    if (status === STATUS_OK) return true;
    if (status === STATUS_NOT_FOUND) return false;
    throw this.#statusError("touch", key, status);
  }

  /** `delete`: removes `id`; an absent id is fine. */
  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    const status = (await this.#send("delete", OP_DELETE, key, NO_EXTRAS)).header.status;
    if (status !== STATUS_OK && status !== STATUS_NOT_FOUND) throw this.#statusError("delete", key, status);
  }

  async #compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
    const key = this.#key(id);
    const extras = expirationExtras(ttl, true);
    const token = typeof version === "string" ? tokenOf(version) : undefined;
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
      const read = await this.#send("get (compare-and-set)", OP_GET, key, NO_EXTRAS);
      const readStatus = read.header.status;
      if (readStatus === STATUS_NOT_FOUND) return { status: "missing" };
      if (readStatus !== STATUS_OK) throw this.#statusError("get (compare-and-set)", key, readStatus);
      if (!read.val.equals(wanted)) {
        const currentVersion = versionOf(read.header.cas);
        const conflict = read.val.toString("utf8");
        return currentVersion === undefined ? { status: "conflict", current: conflict } : { status: "conflict", current: conflict, version: currentVersion };
      }
      current = expected;
      const cas = read.header.cas;
      // A zero token in the request would make the replace unconditional: refuse instead.
      if (cas === undefined || versionOf(cas) === undefined) {
        const server = this.#serverOf(key);
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
    const response = await this.#send("compare-and-set", OP_REPLACE, key, extras, record, token);
    const status = response.header.status;
    if (status === STATUS_OK) {
      const version = versionOf(response.header.cas);
      return version === undefined ? { status: "written" } : { status: "written", version };
    }
    if (status === STATUS_NOT_FOUND) return { status: "missing" };
    if (status === STATUS_EXISTS) return null;
    throw this.#statusError("compare-and-set", key, status, record);
  }

  #key(id: string): string {
    if (typeof id !== "string" || id.length === 0) throw new MemcachedStoreError("ERR_MEMCACHED_KEY", "session id must be a non-empty string");
    const key = this.prefix + id;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: skip counting when it cannot be over.
    if (key.length * 3 > MEMCACHED_MAX_KEY_BYTES) {
      const bytes = Buffer.byteLength(key);
      if (bytes > MEMCACHED_MAX_KEY_BYTES) {
        throw new MemcachedStoreError(
          "ERR_MEMCACHED_KEY",
          `key of ${bytes} bytes (prefix ${this.#prefixBytes} + id ${bytes - this.#prefixBytes}) exceeds memcached's limit of ${MEMCACHED_MAX_KEY_BYTES} bytes; use a shorter prefix or shorter ids`,
        );
      }
    }
    if (BAD_KEY_CHAR.test(id)) throw new MemcachedStoreError("ERR_MEMCACHED_KEY", "session id holds a space or control character, which memcached keys cannot hold");
    return key;
  }

  #serverOf(key: string): string | undefined {
    try {
      const server = this.#client.server(key);
      return server ? `${server.host}:${server.port}` : undefined;
    } catch {
      return undefined;
    }
  }

  #statusError(operation: string, key: string, status: number, record?: string): MemcachedStoreError {
    const text = STATUS_TEXT[status] ?? `status 0x${status.toString(16)}`;
    let hint = "";
    if (status === STATUS_TOO_LARGE && record !== undefined) {
      hint = ` (record of ${Buffer.byteLength(record)} bytes is over the server's item size limit, memcached -I, 1 MB by default)`;
    } else if (status === STATUS_UNKNOWN_COMMAND && operation === "get-and-touch") {
      hint = " (the server has no get-and-touch: use memcached >= 1.4.8, or getAndTouch: false)";
    }
    const server = this.#serverOf(key);
    return new MemcachedStoreError("ERR_MEMCACHED_STATUS", `${operation} failed on ${server ?? "the server"}: ${text}${hint}`, { server, status });
  }

  /** Send one request to the key's server; rejects within `timeout`, whatever memjs does. */
  #send(operation: string, opcode: number, key: string, extras: Buffer, value = "", cas?: Buffer): Promise<MemjsResponse> {
    const server = () => this.#serverOf(key) ?? "the server";
    return bounded(
      () =>
        new Promise<MemjsResponse>((resolve, reject) => {
          try {
            const client = this.#client;
            client.incrSeq();
            const seq = client.seq;
            const request = memjs.Utils.makeRequestBuffer(opcode, key, extras, value, seq);
            cas?.copy(request, 16); // header bytes 16-23: the CAS token (memjs leaves them zero)
            // perform() routes by key, applies the client's retries/failover settings and matches the answer by seq.
            client.perform(key, request, seq, (err, response) => {
              if (err === null && response !== undefined && response !== null) resolve(response);
              else reject(err);
            });
          } catch (err) {
            reject(err ?? new Error("memjs threw"));
          }
        }),
      this.#timeoutMs,
      () => new MemcachedStoreError("ERR_MEMCACHED_TIMEOUT", `${operation} got no answer from ${server()} within ${this.timeout}s`, { server: this.#serverOf(key) }),
      (err) => {
        if (err instanceof MemcachedStoreError) return err;
        // memjs's errors are plain; scrub them anyway so nothing a driver attaches rides along.
        // The driver's words are the cause's, said once; no cause means memjs answered with nothing.
        const cause = err === null || err === undefined ? undefined : scrubError(err);
        const message = cause === undefined ? `${operation} failed on ${server()}: no response` : `${operation} failed on ${server()}`;
        return new MemcachedStoreError("ERR_MEMCACHED_CONNECTION", message, { server: this.#serverOf(key), cause });
      },
    );
  }
}

/** Options of {@link createMemcachedClient}. Durations in seconds. */
export interface MemcachedClientOptions {
  /**
   * Seconds one attempt waits for an answer before memjs drops the connection and fails (or retries) it.
   * @default 0.4
   */
  timeout?: number;
  /**
   * Seconds to open a connection.
   * @default same as `timeout`
   */
  connectTimeout?: number;
  /**
   * Retries after a failed attempt (memjs's own `retries` option counts attempts; this helper
   * passes `retries + 1`). With the defaults a dead server fails a call in about 0.85 s, inside the
   * store's 1 s `timeout`.
   * @default 1
   */
  retries?: number;
  /**
   * Seconds between a failed attempt and its retry.
   * @default 0.05
   */
  retryDelay?: number;
  /**
   * Move a failed server's keys to the next server for `failoverTime` seconds. Off by default and
   * best left off for sessions: a session written to a stand-in server stays there after the real
   * one is back; a logout deletes it only on the real server, and the next failover serves the stale,
   * logged-out copy again. Each process also decides failover on its own, so two processes can read
   * the same session from different servers.
   * @default false
   */
  failover?: boolean;
  /**
   * Seconds a failed server is skipped when `failover` is on.
   * @default 60
   */
  failoverTime?: number;
  /**
   * TCP keep-alive on the connections, so a silently vanished server is noticed on idle connections.
   * @default true
   */
  keepAlive?: boolean;
  /**
   * Seconds of idleness before the first keep-alive probe.
   * @default 30
   */
  keepAliveDelay?: number;
  /**
   * How keys are placed on the servers:
   * - `"ketama"`: consistent hashing, placed exactly as libmemcached's ketama-compatible mode
   *   (PHP memcached with `OPT_LIBKETAMA_COMPATIBLE`, pylibmc with `ketama_weighted`) places them. Adding a
   *   fourth server to three moves about a quarter of the sessions, not three quarters.
   * - `"modula"`: memjs's own `hash(key) % servers`, the placement of earlier versions of this
   *   package: keep it until you can move over (see the README, "Memcached: placement").
   * @default "ketama"
   */
  distribution?: "ketama" | "modula";
  /**
   * Relative weight of each server, in the order of `servers` (whole numbers >= 1): a server of
   * weight 2 gets about twice the keys of one of weight 1. Ketama placement only.
   * @default every server 1
   */
  weights?: readonly number[];
  /** SASL user name for every server (or put `user:pass@` in a server address). */
  username?: string;
  /** SASL password for every server. */
  password?: string;
  /**
   * Where memjs writes its own failure lines. Failures also reach you as rejected calls (and through
   * the session manager's `logger`).
   * @default silent
   */
  logger?: { log(...args: unknown[]): void };
}

const SERVER_ADDRESS = /^(?:[^\s,@]+@)?[^\s,@:]+(?::\d{1,5})?$/;

/**
 * A `memjs` client with settings that suit sessions: a short per-attempt timeout, one retry,
 * failover off, TCP keep-alive on, memjs's console logging silenced, and memjs's late-close
 * reconnect bug worked around (the first request after a hung server resumes is not lost).
 *
 * @param servers `"host:port"` (or `"user:pass@host:port"`), one or many; a comma-separated string works too.
 * @example
 * const client = createMemcachedClient(process.env.MEMCACHED_SERVERS); // "host1:11211,host2:11211"; throws at boot when unset
 * const store = new MemcachedStore({ client });
 * // on shutdown: client.close();
 */
export function createMemcachedClient(servers: string | readonly string[] | undefined, options: MemcachedClientOptions = {}): memjs.Client {
  // An unset MEMCACHED_SERVERS must fail at boot with what is missing, not with "servers is not iterable".
  if (typeof servers !== "string" && !Array.isArray(servers)) {
    throw new SessionConfigError(
      `createMemcachedClient: no servers given (got ${servers === null ? "null" : typeof servers}; is MEMCACHED_SERVERS set?). Pass "host:port", "host1:port,host2:port" or an array of "host:port"`,
    );
  }
  const list = (typeof servers === "string" ? servers.split(",") : [...servers]).map((s) => (typeof s === "string" ? s.trim() : s));
  // memjs falls back to localhost:11211 (or environment variables) for an empty list: refuse instead.
  if (list.length === 0 || list.some((s) => typeof s !== "string" || !SERVER_ADDRESS.test(s))) {
    throw new SessionConfigError(`createMemcachedClient: servers must be one or more "host:port" addresses, got ${JSON.stringify(servers)}`);
  }
  const timeout = positiveSeconds("timeout", options.timeout, 0.4);
  const connectTimeout = positiveSeconds("connectTimeout", options.connectTimeout, timeout);
  const retries = options.retries ?? 1;
  if (!Number.isInteger(retries) || retries < 0) throw new SessionConfigError(`createMemcachedClient: retries must be a whole number >= 0, got ${String(retries)}`);
  const retryDelay = options.retryDelay === 0 ? 0 : positiveSeconds("retryDelay", options.retryDelay, 0.05);
  const silent = { log: () => {} };
  const client = memjs.Client.create(list.join(","), {
    timeout,
    conntimeout: connectTimeout,
    retries: retries + 1,
    retry_delay: retryDelay,
    // Off by default: see MemcachedClientOptions.failover.
    failover: options.failover ?? false,
    failoverTime: positiveSeconds("failoverTime", options.failoverTime, 60),
    keepAlive: options.keepAlive ?? true,
    keepAliveDelay: positiveSeconds("keepAliveDelay", options.keepAliveDelay, 30),
    username: options.username,
    password: options.password,
    logger: options.logger ?? silent,
  });
  guardStaleSockets(client);
  const distribution = options.distribution ?? "ketama";
  if (distribution !== "ketama" && distribution !== "modula") {
    throw new SessionConfigError(`createMemcachedClient: distribution must be "ketama" or "modula", got ${JSON.stringify(distribution)}`);
  }
  if (options.weights !== undefined && distribution !== "ketama") throw new SessionConfigError('createMemcachedClient: weights need distribution: "ketama"');
  if (distribution === "ketama") useKetama(client, options.weights);
  return client;
}

/**
 * Place the keys of a `memjs` client by ketama consistent hashing, as {@link createMemcachedClient}
 * does by default (libmemcached-compatible; see its `distribution` option), through memjs's
 * documented `getServer` hook. For a client you made with `memjs.Client.create` yourself.
 *
 * @param weights relative weight of each server, in the client's server order (default: all 1).
 * @example
 * const client = memjs.Client.create("10.0.0.1:11211,10.0.0.2:11211");
 * useKetama(client);
 */
export function useKetama(client: memjs.Client, weights?: readonly number[]): void {
  const servers = (client as unknown as { servers?: unknown }).servers;
  if (!Array.isArray(servers) || servers.length === 0) throw new SessionConfigError("useKetama: client must be a memjs Client with its servers");
  if (weights !== undefined && (!Array.isArray(weights) || weights.length !== servers.length || weights.some((w) => !Number.isInteger(w) || w < 1))) {
    throw new SessionConfigError(`useKetama: weights must be one whole number >= 1 per server (${servers.length}), got ${JSON.stringify(weights)}`);
  }
  const continuum = new KetamaContinuum(
    (servers as { host: string; port: number }[]).map((server, i) => ({ host: server.host, port: server.port, weight: weights?.[i] ?? 1 })),
  );
  // memjs asks getServer for the index of a key's server (only with two servers or more).
  (client as unknown as { getServer(key: string): number }).getServer = (key) => continuum.serverFor(key);
}
