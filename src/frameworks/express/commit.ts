import type { ServerResponse } from "node:http";
import type { CommitResult } from "../../index.js";
import type { Covered, Hold } from "./hold.js";

/** One `Set-Cookie` value, several (two session middlewares on one request), or none. */
export type SetCookie = string | string[] | undefined;

/** What the request's sessions add to the head once committed: `Set-Cookie` values, and the `header` option's header. */
export interface Committed {
  readonly setCookie: SetCookie;
  readonly setHeader?: readonly [name: string, value: string];
}

/** Every session on the request committed: what to add to the head, now or once written. */
export function commitAll(hold: Hold): Committed | Promise<Committed> {
  // `req.session = null` / `delete req.session` unsets the session the request had last (the `unset` option).
  const unset = hold.req.session == null ? (hold.others?.[hold.others.length - 1] ?? hold) : undefined;
  const commit = (c: Covered): CommitResult | Promise<CommitResult> => (c === unset ? commitUnset(c) : c.manager.commitNow(c.manager.currentSession(c.session) as never));
  const first = commit(hold);
  if (hold.others === undefined) return first;
  const all = [first, ...hold.others.map(commit)];
  const merged = (results: readonly CommitResult[]): Committed => {
    const values = results.flatMap((r) => (r.setCookie === undefined ? [] : [r.setCookie]));
    return { setCookie: values.length === 0 ? undefined : values, setHeader: results.find((r) => r.setHeader !== undefined)?.setHeader };
  };
  return all.some((r) => r instanceof Promise) ? Promise.all(all).then(merged) : merged(all as CommitResult[]);
}

/** A session the app took off the request: destroyed (`unset: "destroy"`), or left as stored and nothing sent (`"keep"`). */
function commitUnset(c: Covered): CommitResult | Promise<CommitResult> {
  if (c.manager.unset === "keep") return { setCookie: undefined };
  // The object regenerate() left on the request last, not the one loaded.
  const session = c.manager.currentSession(c.session);
  return session.destroy().then(() => c.manager.commitNow(session as never));
}

/** Add our `Set-Cookie` value(s) after any the app set. */
export function appendSetCookie(res: ServerResponse, value: string | string[]): void {
  const current = res.getHeader("Set-Cookie");
  if (current === undefined) res.setHeader("Set-Cookie", value);
  else res.setHeader("Set-Cookie", [...(Array.isArray(current) ? current : [String(current)]), ...(Array.isArray(value) ? value : [value])]);
}
