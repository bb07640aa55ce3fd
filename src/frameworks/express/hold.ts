import type { ServerResponse } from "node:http";
import type { Request } from "express";
import type { Session, SessionManager } from "../../index.js";

/** The four methods that send (or start sending) a response: the ones the hold stands in front of. */
export type Kind = "writeHead" | "write" | "end" | "flushHeaders";
export type Args = unknown[];
export type Method = (...args: Args) => unknown;
export type Methods = Record<Kind, Method>;
/** A call the app made while the commit ran, made again once it is done. */
export type Held = { readonly kind: Kind; readonly args: Args };

export const KINDS: readonly Kind[] = ["writeHead", "write", "end", "flushHeaders"];

/**
 * Where a response's hold is:
 * - `"unsent"`: nothing sent yet; the first call that sends commits the sessions.
 * - `"holding"`: the commit runs; the app's calls are queued.
 * - `"passing"`: the head is out (or the commit needed no store); calls pass through.
 * - `"errorRouted"`: the commit failed after the app answered; the error is with Express, its calls pass.
 * - `"discarding"`: we answered (or cut) the response ourselves; the app's calls go nowhere.
 */
export type HoldState = "unsent" | "holding" | "passing" | "errorRouted" | "discarding";

/** A session a middleware instance gave the request, and the manager that commits it. */
export interface Covered {
  readonly manager: SessionManager<never>;
  readonly session: Session;
}

/** The hold on one response: what the session binding needs when the app sends. */
export interface Hold {
  readonly req: Request;
  readonly res: ServerResponse;
  readonly manager: SessionManager<never>;
  readonly session: Session;
  /** Sessions of other, differently configured instances mounted on this request's path, committed with the first. */
  others: Covered[] | undefined;
  /** `socket.destroy()` (Express's final handler, after an error) came while we held the answer: done once it is out. */
  destroyLater: boolean;
  /** The app's `end()` is held: `res.writableEnded` says `true` meanwhile, as it would without us. */
  endHeld: boolean;
  /** The methods the hold stands in front of, where a call continues: the prototype under ours, or the functions `res` had. */
  readonly original: Methods;
  state: HoldState;
  readonly queue: Held[];
  waitingForDrain: boolean;
}

/** A response's hold (or `null` while its session loads). */
export const HOLD = Symbol.for("shared-session.express.hold");
export type Holder = ServerResponse & { [HOLD]?: Hold | null };

export function newHold(req: Request, res: ServerResponse, manager: SessionManager<never>, session: Session, original: Methods): Hold {
  return { req, res, manager, session, others: undefined, destroyLater: false, endHeld: false, original, state: "unsent", queue: [], waitingForDrain: false };
}

/** Make the call on the methods the hold stands in front of. */
export function pass(hold: Hold, kind: Kind, args: Args): unknown {
  return Reflect.apply(hold.original[kind], hold.res, args);
}
