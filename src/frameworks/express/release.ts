/** How a hold ends: the write is in the store and the app's calls are replayed, or it failed and the error is answered. */
import { STATUS_CODES } from "node:http";
import { StoreUnavailableError } from "../../index.js";
import { appendSetCookie, type SetCookie } from "./commit.js";
import { pass, type Hold } from "./hold.js";
import { unmark } from "./node-response.js";
import { restoreSocket } from "./socket.js";

/** Representation headers of a response that is being replaced by an error: they describe the discarded body. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language", "content-range", "content-disposition", "etag", "last-modified", "location", "transfer-encoding"];

/** Before the replay (or an error answer) the head is ours to send again, and `end()` Node's to take. */
function unmarkHead(hold: Hold): void {
  unmark(hold.res, hold.endHeld);
  hold.endHeld = false;
}

/**
 * The write is in the store: replay the queued calls, in order, with `Set-Cookie` added before the
 * head goes out.
 */
export function release(hold: Hold, setCookie: SetCookie, setHeader?: readonly [string, string]): void {
  const { res } = hold;
  hold.state = "passing";
  unmarkHead(hold);
  if (setHeader !== undefined && !res.headersSent) res.setHeader(...setHeader);
  let cookie = setCookie;
  let lastWrite = true;
  try {
    for (const { kind, args } of hold.queue.splice(0)) {
      if (cookie !== undefined && !res.headersSent) appendSetCookie(res, cookie);
      cookie = undefined;
      if (kind === "write") lastWrite = pass(hold, kind, args) !== false;
      else pass(hold, kind, args);
    }
  } catch (err) {
    // Node refused a replayed call the app made (it would have thrown in the app's own call).
    restoreSocket(hold);
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  restoreSocket(hold);
  if (hold.waitingForDrain && lastWrite && !res.writableEnded) {
    hold.waitingForDrain = false;
    res.emit("drain");
  }
}

/** Last resort for a bug in the replay itself: never an unhandled rejection, never a hung response. */
export function abort(hold: Hold, err: unknown): void {
  hold.state = "discarding";
  unmarkHead(hold);
  restoreSocket(hold);
  hold.res.destroy(err instanceof Error ? err : new Error(String(err)));
}

/**
 * The write failed: discard the app's response and go to `next(err)` (through `req.next`, the way
 * Express routes errors of `res.sendFile`), or, when the app was still streaming, answer the error
 * ourselves.
 */
export function fail(hold: Hold, err: unknown): void {
  // Express may still have a step queued for this request (a next() after the answer reaches its
  // final handler on a later turn): let it see the answer as sent, as it would without us.
  setImmediate(failNow, hold, err);
}

function failNow(hold: Hold, err: unknown): void {
  const { req, res } = hold;
  unmarkHead(hold);
  // Express already gave up on this response (its final handler closed it after an error): we answer, then close.
  const ended = !hold.destroyLater && hold.queue.some((held) => held.kind === "end");
  const callbacks = hold.queue.splice(0).flatMap(({ args }) => args.filter((a): a is (e?: unknown) => void => typeof a === "function"));
  for (const cb of callbacks) process.nextTick(cb, err);
  if (res.headersSent) {
    restoreSocket(hold);
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  for (const name of BODY_HEADERS) res.removeHeader(name);
  res.setHeader("Cache-Control", "no-store");
  if (err instanceof StoreUnavailableError) res.setHeader("Retry-After", String(err.retryAfter));
  const status = errorStatus(err);
  res.statusCode = status;
  if (ended) {
    // The app finished its answer: route the error as if it had called next(err) instead.
    hold.state = "errorRouted";
    restoreSocket(hold);
    const route = typeof req.next === "function" ? req.next : undefined;
    if (route !== undefined) {
      route(err);
      return;
    }
  }
  // The app is still streaming: its writes go nowhere from now on, and we answer.
  hold.state = "discarding";
  const body = `${status} ${STATUS_CODES[status] ?? "Error"}\n`;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  pass(hold, "writeHead", [status]);
  pass(hold, "end", [body]);
  restoreSocket(hold);
}

function errorStatus(err: unknown): number {
  if (err instanceof StoreUnavailableError) return 503;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status <= 599 ? status : 500;
}
