import { EventEmitter } from "node:events";

/**
 * A patch of memjs 1.x for a bug in `lib/memjs/server.js`, `Server.prototype.sock`: the "close"
 * handler of every socket sets `server._socket = undefined` (and the "error" handler calls
 * `server.error()`) even after memjs has dropped that socket on a request timeout and opened a newer
 * one. A paused server that resumes closes the dropped socket late; if that lands while the new
 * socket connects, memjs forgets the new socket and the request waiting on it is never sent (a store
 * timeout, a 503).
 */

/** What the stale-socket guard uses of a memjs 1.x `Server` (internals, checked before use). */
interface MemjsServerInternals {
  _socket?: unknown;
  sock: (...args: unknown[]) => unknown;
}

const guardedServers = new WeakSet<object>();

/**
 * Make a socket's memjs close and error handlers run only while it is still its server's socket: a
 * dropped socket's requests were already failed when memjs dropped it. Applied to every server of
 * `client` (see the module's comment for the bug it works around).
 *
 * Feature-detected and idempotent: a client or socket that does not look like memjs 1.x is left as
 * it is (today's behaviour).
 */
export function guardStaleSockets(client: unknown): void {
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
      if (socket !== before && socket instanceof EventEmitter) runHandlersOnlyWhileCurrent(internals, socket);
      return result;
    };
  }
}

/** Gate the close and error handlers memjs just put on a new `socket` on it still being `server`'s. */
function runHandlersOnlyWhileCurrent(server: MemjsServerInternals, socket: EventEmitter): void {
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
