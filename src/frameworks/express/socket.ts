import type { Socket } from "node:net";
import type { Hold } from "./hold.js";

/** The `destroy` functions we put on sockets, so that we only ever take back our own. */
const deferredDestroys = new WeakSet<object>();

/**
 * Express's final handler destroys the socket when an error comes after the answer: without us
 * the answer is already written by then. While we hold it, that destroy waits for the replay.
 */
export function deferSocketDestroy(hold: Hold): void {
  const socket = hold.res.socket as (Socket & { destroy: Socket["destroy"] }) | null;
  if (socket === null || Object.hasOwn(socket, "destroy")) return;
  const destroy = function destroy(this: Socket, ...args: Parameters<Socket["destroy"]>): Socket {
    if (hold.state === "holding" && args[0] === undefined) {
      hold.destroyLater = true;
      return this;
    }
    Reflect.deleteProperty(socket, "destroy");
    return socket.destroy(...args);
  };
  deferredDestroys.add(destroy);
  socket.destroy = destroy;
}

/** The answer is out (or replaced): the socket's own `destroy` back, and a destroy that waited done now. */
export function restoreSocket(hold: Hold): void {
  const socket = hold.res.socket;
  if (socket !== null && Object.hasOwn(socket, "destroy") && deferredDestroys.has(socket.destroy)) Reflect.deleteProperty(socket, "destroy");
  if (hold.destroyLater) {
    hold.destroyLater = false;
    socket?.destroy();
  }
}
