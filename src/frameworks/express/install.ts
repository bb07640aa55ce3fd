/**
 * Where the hold stands: in front of Express's response prototype (shared by every response, a
 * property lookup per call), or, when a response already carries its own versions of the methods
 * (a middleware that wraps them ran first), in front of that response's own. Both places get the
 * same interceptor, with one rule: a call is held only by the interceptor its hold was made for.
 */
import type { Request } from "express";
import type { Session, SessionManager } from "../../index.js";
import { HOLD, KINDS, newHold, type Args, type Holder, type Kind, type Method, type Methods } from "./hold.js";
import { intercept } from "./intercept.js";

/**
 * The method `kind` in front of `original`. It serves the hold of the response only when that hold
 * was made for `original` (this interceptor); any other call (a response without a session, a wrapper
 * that ran first calling the layer below, a hold made at the other place) continues to `original`,
 * so no call is held twice. `owner`: the response whose own method this is.
 */
function interceptor(kind: Kind, original: Methods, owner?: Holder): Method {
  return {
    [kind](this: Holder, ...args: Args): unknown {
      const hold = (owner ?? this)[HOLD];
      return hold != null && hold.original === original ? intercept(hold, kind, args) : Reflect.apply(original[kind], this, args);
    },
  }[kind]!;
}

/** Give the response its hold, in front of the prototype's methods when they are ours, else in front of its own. */
export function holdResponse(req: Request, res: Holder, manager: SessionManager<never>, session: Session): void {
  const own = res as unknown as Methods;
  const installed = interceptorsFor(res);
  if (installed !== undefined && own.end === installed.methods.end && own.write === installed.methods.write && own.writeHead === installed.methods.writeHead && own.flushHeaders === installed.methods.flushHeaders) {
    res[HOLD] = newHold(req, res, manager, session, installed.original);
  } else {
    // Something replaced them on this response (or this is not an Express response we know): stand in front of its own.
    const original: Methods = { writeHead: own.writeHead, write: own.write, end: own.end, flushHeaders: own.flushHeaders };
    res[HOLD] = newHold(req, res, manager, session, original);
    for (const kind of KINDS) own[kind] = interceptor(kind, original, res);
  }
}

interface Installed {
  /** The interceptors we defined on the prototype. */
  readonly methods: Methods;
  /** The prototype under it, where they continue. */
  readonly original: Methods;
}

/** Express response prototypes we looked at: what we installed on each (`undefined`: not one we install on). */
const installations = new WeakMap<object, Installed | undefined>();

/**
 * Our methods on the Express response prototype of `res`: `res` → the app's `app.response` (own
 * `app`) → Express's `response` (own `send`) → `http.ServerResponse.prototype`. Installed on Express's
 * `response`, shared by every app and sub-app of that Express, so a response that moves between apps
 * (a mounted app that falls through) stays held.
 */
function interceptorsFor(res: object): Installed | undefined {
  const appResponse = Object.getPrototypeOf(res) as object | null;
  if (appResponse === null || !Object.hasOwn(appResponse, "app")) return undefined;
  const target = Object.getPrototypeOf(appResponse) as Record<string, unknown> | null;
  if (target === null) return undefined;
  if (installations.has(target)) return installations.get(target);
  const base = Object.getPrototypeOf(target) as Methods | null;
  const installable =
    base !== null &&
    typeof target.send === "function" &&
    Object.hasOwn(target, "send") &&
    KINDS.every((kind) => !Object.hasOwn(target, kind) && !Object.hasOwn(appResponse, kind) && typeof base[kind] === "function");
  const installed = installable ? install(target, base) : undefined;
  installations.set(target, installed);
  return installed;
}

function install(target: object, base: Methods): Installed {
  const methods = {} as Methods;
  for (const kind of KINDS) {
    methods[kind] = interceptor(kind, base);
    Object.defineProperty(target, kind, { value: methods[kind], writable: true, configurable: true, enumerable: false });
  }
  return { methods, original: base };
}
