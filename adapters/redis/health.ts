import { scrubError } from "../../src/core/errors.js";
import type { SessionLogger } from "../../src/core/types.js";
import type { RedisClusterCommands, RedisCommands, RedisNodeCommands } from "./commands.js";
import { messageOf } from "./errors.js";

/**
 * Resolve once `client` is connected and every server it talks to (each master of a Cluster) answers
 * `PING`, within `timeoutMs`. A lazy client is connected; a client still connecting or reconnecting
 * is waited for. On failure the error says why, from the client's last `error` event (refused, wrong
 * password, no master...). Sends nothing while disconnected, so it works with `enableOfflineQueue: false`
 * right after the client is created, where `client.ping()` would fail at once.
 */
export async function whenRedisReady(client: RedisCommands, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  const onError = (err: unknown) => {
    lastError = err;
  };
  // Not a handler of the app's errors: only remembered for the message; `attachLogger` routes them.
  client.on("error", onError);
  const notReady = (what: string): Error =>
    new Error(
      `Redis not ready within ${timeoutMs / 1000}s: ${what} (client status "${client.status}")${lastError === undefined ? "" : `; last client error: ${messageOf(lastError)}`}`,
      { cause: lastError },
    );
  try {
    if (client.status === "end") throw new Error('the Redis client was closed (status "end"): make a new one');
    if (client.status === "wait") client.connect().catch(onError);
    if (client.status !== "ready") {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(notReady("not connected")), Math.max(0, deadline - Date.now()));
        const onReady = () => finish();
        const onEnd = () => finish(notReady("the client gave up reconnecting"));
        const finish = (err?: Error) => {
          clearTimeout(timer);
          client.off("ready", onReady);
          client.off("end", onEnd);
          if (err) reject(err);
          else resolve();
        };
        client.on("ready", onReady);
        client.on("end", onEnd);
      });
    }
    const nodes: RedisNodeCommands[] = client.isCluster ? (client as RedisClusterCommands).nodes("master") : [client as unknown as RedisNodeCommands];
    if (nodes.length === 0) throw notReady("the Cluster knows no master");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(notReady("no answer to PING")), Math.max(0, deadline - Date.now()));
    });
    try {
      await Promise.race([Promise.all(nodes.map((node) => node.ping())), timedOut]);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("Redis not ready")) throw err;
      throw new Error(`Redis answered PING with an error: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  } finally {
    client.off("error", onError);
  }
}

/**
 * The store's one `error` listener on a client. It always remembers the client's last error
 * (scrubbed), the root cause a "not connected" failure names. When the app attached no listener of
 * its own it also reports: ioredis prints "Unhandled error event" with a stack on every reconnection
 * attempt when no `error` listener exists, so this routes them to the session manager's logger
 * instead, one line per outage: the first error, then nothing until the client is ready again, which
 * is logged too. Before a logger is attached (or without one) the first error of each outage is a
 * process warning instead. With the app's own listener, the app's listener stays in charge.
 */
export class ClientErrorLog {
  #logger: SessionLogger | undefined;
  #failing = false;
  #failures = 0;
  /** The client's last error, scrubbed of commands and arguments; `null` before any. */
  lastError: Error | null = null;
  readonly #detach: () => void;

  constructor(client: RedisCommands, store: string) {
    const report = client.listenerCount("error") === 0;
    const onError = (err: unknown) => {
      this.lastError = scrubError(err);
      if (!report) return;
      this.#failures += 1;
      if (this.#failing) return;
      this.#failing = true;
      const message = `${store}: Redis client error: ${messageOf(err)} (reconnecting; repeats of this outage are not logged)`;
      if (this.#logger) this.#logger({ level: "error", event: "store.client.error", message, error: this.lastError });
      else process.emitWarning(`[shared-session] ${message}. Pass a logger to the session options, or add client.on("error", ...)`, "SharedSessionWarning");
    };
    const onReady = () => {
      if (!this.#failing) return;
      this.#logger?.({ level: "info", event: "store.client.ready", message: `${store}: Redis client connected again after ${this.#failures} error(s)` });
      this.#failing = false;
      this.#failures = 0;
    };
    client.on("error", onError);
    client.on("ready", onReady);
    this.#detach = () => {
      client.off("error", onError);
      client.off("ready", onReady);
    };
  }

  /** Where errors go from now on. */
  attach(logger: SessionLogger): void {
    this.#logger = logger;
  }

  detach(): void {
    this.#detach();
  }
}
