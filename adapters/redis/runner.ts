import type { Cluster } from "ioredis";
import { bounded } from "../../src/core/bounded.js";
import type { RedisCommands, RedisNodeCommands } from "./commands.js";
import { messageOf, RedisStoreError, toStoreError } from "./errors.js";
import { ClientErrorLog } from "./health.js";
import type { LuaScript } from "./lua.js";
import { followRedirects, unpipelined } from "./redirect.js";

/** Statuses of a client that has not connected yet; any other non-ready status means an outage or a closed client. */
const STARTING_STATUSES = new Set(["wait", "connecting", "connect"]);
const CLOSED_STATUSES = new Set(["end", "disconnecting"]);

function noop(): void {}

/**
 * How RedisStore sends its commands: every operation bounded by the store's `timeout`; nothing sent
 * (nothing queued in the client's offline queue) while the client is down after it was once ready;
 * before the first connection, a wait for it within the same budget; on an ioredis Cluster, the
 * redirections its auto-pipeline did not follow resent; Lua scripts run by `EVALSHA`.
 */
export class CommandRunner {
  readonly #commands: RedisCommands;
  /** Seconds an operation may take, for messages. */
  readonly #timeout: number;
  readonly #timeoutMs: number;
  /** An ioredis Cluster, whose unfollowed redirections are resent (see followRedirects); else `null`. */
  readonly #redirectingCluster: Cluster | null;
  /** Resolves when the client first becomes ready; `null` once it has been ready. */
  #firstReady: Promise<void> | null = null;
  #readyListener: (() => void) | null = null;
  /** Remembers the client's last error (the root cause of "not connected"); reports errors to the manager's logger when the app attached no listener. */
  readonly clientErrors: ClientErrorLog;

  /**
   * @param redirectingCluster the ioredis Cluster itself when `commands` is one (not a node-redis Cluster, which follows redirections itself)
   * @param store the store's name, for the client error log
   */
  constructor(commands: RedisCommands, timeout: number, redirectingCluster: Cluster | null, store: string) {
    this.#commands = commands;
    this.#timeout = timeout;
    this.#timeoutMs = Math.ceil(timeout * 1000);
    this.#redirectingCluster = redirectingCluster;
    if (commands.status !== "ready") {
      this.#firstReady = new Promise<void>((resolve) => {
        this.#readyListener = () => {
          this.#firstReady = null;
          this.#readyListener = null;
          resolve();
        };
        commands.once("ready", this.#readyListener);
      });
    }
    this.clientErrors = new ClientErrorLog(commands, store);
  }

  /**
   * Run one operation bounded by `timeout`. Sends nothing while the client is disconnected after it
   * was once ready (fail fast, nothing queued); before the first connection, waits for it within the
   * same time budget. `target` is one server of the deployment (a Cluster master for `SCAN`), sent to
   * as it is. `send(true)` is a resend outside the auto-pipeline after a Cluster redirection.
   */
  run<T>(operation: string, send: (unpipelinedResend?: boolean) => Promise<T>, target: RedisCommands | RedisNodeCommands = this.#commands): Promise<T> {
    // On an ioredis Cluster, a redirection the auto-pipeline did not follow is resent (see followRedirects).
    const run = this.#redirectingCluster !== null && target === this.#commands ? () => followRedirects(this.#redirectingCluster!, send) : send;
    // Connected (every request of a healthy app): one promise and one timer, nothing else.
    if (target !== this.#commands || this.#commands.status === "ready") return this.#bounded(operation, run);
    return this.#runWhenConnected(operation, run);
  }

  /**
   * Run a Lua script on one key: `EVALSHA`, falling back to `EVAL` (which caches it) when the server
   * does not have it yet (first use, a restart, `SCRIPT FLUSH`).
   */
  async script(operation: string, lua: LuaScript, key: string, ...args: (string | number)[]): Promise<unknown> {
    return this.run(operation, async (unpipelinedResend) => {
      try {
        return await this.#commands.evalsha(lua.sha, 1, key, ...args);
      } catch (err) {
        if (!messageOf(err).startsWith("NOSCRIPT")) throw err;
        const load = () => this.#commands.eval(lua.source, 1, key, ...args);
        // Resent after a Cluster redirection: the fallback must bypass the auto-pipeline too.
        return unpipelinedResend && this.#redirectingCluster !== null ? unpipelined(this.#redirectingCluster, load) : load();
      }
    });
  }

  /** Stop waiting for the first connection and stop listening to the client's errors. */
  detach(): void {
    if (this.#readyListener !== null) this.#commands.off("ready", this.#readyListener);
    this.#readyListener = null;
    this.clientErrors.detach();
  }

  /** `send()` bounded by `timeout`; a late answer or rejection after the timeout is dropped. */
  #bounded<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return bounded(
      send,
      this.#timeoutMs,
      () => new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} did not answer within ${this.#timeout}s`),
      (err) => toStoreError(operation, err, this.clientErrors.lastError),
      true,
    );
  }

  /** Not ready: wait for the first connection (within the same budget), or fail at once. */
  async #runWhenConnected<T>(operation: string, send: () => Promise<T>, target: RedisCommands | RedisNodeCommands = this.#commands): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        // Still not connected: the client's last error (ECONNREFUSED, WRONGPASS…) says why.
        () =>
          reject(
            new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} did not answer within ${this.#timeout}s`, {
              cause: this.#commands.status === "ready" ? undefined : (this.clientErrors.lastError ?? undefined),
            }),
          ),
        this.#timeoutMs,
      );
      timer.unref?.();
    });
    try {
      if (target === this.#commands) await Promise.race([this.#whenConnected(operation), timedOut]);
      const pending = send();
      pending.catch(noop); // a late rejection after the timeout must not go unhandled
      return await Promise.race([pending, timedOut]);
    } catch (err) {
      throw toStoreError(operation, err, this.clientErrors.lastError);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when commands can be sent now; rejects at once when the client is down or closed. */
  async #whenConnected(operation: string): Promise<void> {
    const status = this.#commands.status;
    if (status === "ready") return;
    if (this.#firstReady !== null && STARTING_STATUSES.has(status)) {
      // lazyConnect: nothing connects until asked.
      if (status === "wait") this.#commands.connect().catch(noop);
      return this.#firstReady;
    }
    const why = CLOSED_STATUSES.has(status) ? "the Redis client was closed" : "the Redis client is not connected (it is reconnecting)";
    throw new RedisStoreError("ERR_REDIS_NOT_CONNECTED", operation, `RedisStore: ${operation} failed at once: ${why}, status "${status}"; nothing was sent`, {
      cause: this.clientErrors.lastError ?? undefined,
    });
  }
}
