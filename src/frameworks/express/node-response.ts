/**
 * What Node's `ServerResponse` does on its own, done again where the hold stands in between: the
 * app's call is queued, not made, so Node's checks and bookkeeping would otherwise come too late
 * (after the commit, outside the app's call) or not at all.
 */
import type { ServerResponse } from "node:http";
import type { Args, Kind } from "./hold.js";

/**
 * Node's `_header` while we hold an answer the app completed: Node, Express and its final handler
 * then see `headersSent` as they would without us (a second `res.send()` throws, a `next()` after
 * the answer is no 404). Never written to the socket: the replay puts `null` back first.
 */
const HELD_HEADER = "HTTP/1.1 000 held by shared-session\r\n\r\n";
type Raw = ServerResponse & { _header: string | null; finished: boolean };

/** `headersSent` true from the app's side once its first send is held, as Node says after a real send. */
export function markHeadSent(res: ServerResponse): void {
  (res as Raw)._header = HELD_HEADER;
}

/** Whether the head the app sees as sent is one we hold. */
export function isHeadHeld(res: ServerResponse): boolean {
  return (res as Raw)._header === HELD_HEADER;
}

/** `writableEnded` true once the app's `end()` is held, as Node says after a real `end()`. */
export function markEnded(res: ServerResponse): void {
  (res as Raw).finished = true;
}

/** Before the replay (or an error answer): the head ours to send again, and `end()` Node's to take. */
export function unmark(res: ServerResponse, ended: boolean): void {
  const raw = res as Raw;
  if (raw._header === HELD_HEADER) raw._header = null;
  if (ended) raw.finished = false;
}

/** Node refuses a second head while ours is held: the app's own call must throw, as Node's would. */
export function headersSentError(): Error {
  return Object.assign(new Error("[shared-session] Cannot write headers after they are sent to the client"), { code: "ERR_HTTP_HEADERS_SENT" });
}

/** Node's status check on the call that sends the head, so a bad status still throws in the app's own call. */
export function checkCall(res: ServerResponse, kind: Kind, args: Args): void {
  if (kind === "writeHead") checkStatus(args[0]);
  else if (!res.headersSent) checkStatus(res.statusCode);
}

/** Statuses Node accepts in `writeHead`. */
function checkStatus(code: unknown): void {
  const n = Number(code);
  if (!Number.isInteger(n) || n < 100 || n > 999) {
    throw new RangeError(`[shared-session] invalid status code: ${String(code)}`);
  }
}

/** Take `writeHead`'s status, reason and headers now (as Node would), so our Set-Cookie is added after them; returns the call to make later. */
export function takeHead(res: ServerResponse, args: Args): Args {
  const hasReason = typeof args[1] === "string";
  applyHeadArgument(res, hasReason ? args[2] : args[1]);
  res.statusCode = Number(args[0]);
  if (hasReason) res.statusMessage = args[1] as string;
  return hasReason ? [args[0], args[1]] : [args[0]];
}

/** Apply the headers argument of `writeHead` now, as Node would (raw array or object), so ours can be added after them. */
function applyHeadArgument(res: ServerResponse, headers: unknown): void {
  if (Array.isArray(headers)) {
    if (headers.length % 2 !== 0) throw new TypeError("[shared-session] writeHead: the raw headers array must have an even length");
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(String(headers[i]));
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]) res.appendHeader(String(headers[i]), headers[i + 1] as string | string[]);
    }
  } else if (headers !== null && typeof headers === "object") {
    for (const [name, value] of Object.entries(headers)) {
      if (name && value !== undefined) res.setHeader(name, value as string | number | readonly string[]);
    }
  }
}
