import type { Request } from "express";
import type { Session } from "../../index.js";

/** Request prototypes that have `sessionID`. */
const withSessionID = new WeakSet<object>();

/** express-session's `req.sessionID`: a getter on the app's request prototype, defined once, reading `req.session.id`. */
export function defineSessionID(req: Request): void {
  const proto = Object.getPrototypeOf(req) as object | null;
  if (proto === null || withSessionID.has(proto)) return;
  withSessionID.add(proto);
  if (Object.hasOwn(proto, "sessionID")) return;
  Object.defineProperty(proto, "sessionID", {
    get(this: Request): string | undefined {
      return (this.session as Session | null | undefined)?.id;
    },
    configurable: true,
    enumerable: false,
  });
}
