import type { Engine, State } from "../engine.js";
import type { CookieAttributes, Data } from "../options.js";
import { checkLifetime } from "../lifetime.js";
import { SessionCookie } from "../session-cookie.js";
import { whyWrite } from "../write.js";
import { indexOwner } from "../owner-index.js";
import { getRecord } from "../read.js";
import { replacedError } from "../session-swap.js";

/**
 * What the peers' session objects offer beyond data (express-session's `cookie` and `isModified`,
 * @fastify/session's and koa-session's lifetimes), and the `"express-session-read"` migration of
 * records from connect-redis's layout.
 */

/** @internal What a session's `cookie` object reads: attributes, and its lifetime (seconds) with the expiry it gives now. */
export interface SessionCookieFacts extends CookieAttributes {
  readonly secure: boolean;
  /** Seconds: the session's own lifetime, else `cookie.maxAge`; `undefined` for a browser-session cookie. */
  readonly lifetime: number | undefined;
  /** The lifetime is the session's own (`setLifetime`), not `cookie.maxAge`. */
  readonly own: boolean;
  /** Unix ms the cookie would expire if sent now (never past the absolute deadline). */
  readonly expiresAt: number | undefined;
}

/** What `session.cookie` shows: the cookie's attributes and this session's lifetime. */
export function cookieOf(state: State): SessionCookieFacts {
  const { cookie, cookieAttributes } = state.engine.config;
  const lifetime = state.meta.lifetime ?? cookie.maxAge;
  return {
    ...cookieAttributes,
    secure: state.secure,
    lifetime,
    own: state.meta.lifetime !== undefined,
    expiresAt: lifetime === undefined ? undefined : Math.min(Date.now() + lifetime * 1000, state.meta.expiresAt),
  };
}

/** `session.cookie`: a view on the session's cookie facts and lifetime. */
export function sessionCookie(state: State): SessionCookie {
  return new SessionCookie({ facts: () => cookieOf(state), setLifetime: (seconds) => setLifetime(state, seconds ?? null) });
}

/** {@link SessionApi.setLifetime}: the session's own lifetime, stored (and the cookie re-sent) at the end of the request. */
export function setLifetime(state: State, seconds: unknown): void {
  const lifetime = checkLifetime(seconds);
  if (state.replacedBy !== undefined) throw replacedError("setLifetime");
  if (state.meta.lifetime === lifetime) return;
  if (lifetime === undefined) delete state.meta.lifetime;
  else state.meta.lifetime = lifetime;
  state.lifetimeChanged = true;
  // A new session only once it has data.
  if (state.persisted) {
    state.rewrite = true;
    state.sendCookie = true;
  }
}

/** Whether `commit` would write the session's data (changed since loaded, or new with data). */
export function isModified(session: Data, state: State): boolean {
  if (state.disabled) return false;
  const reason = whyWrite(state, state.engine.config.serializer.stringify({ ...session }), { saveCalled: false });
  return reason === "new" || reason === "regenerated" || reason === "changed";
}

/**
 * `"express-session-read"`: a record still under its raw id (connect-redis's layout, written by
 * express-session or in step 1) moves to its hashed key, with its owner index entry, and is read
 * from there. Costs one more read for an id found under neither, during the migration only.
 */
export async function moveLegacy(engine: Engine, id: string, key: string): Promise<string | null> {
  const { store, call, config } = engine;
  const raw = await call("get", id, () => store.get(id));
  if (raw === null) return null;
  const now = Date.now();
  const decoded = config.codec.decode(raw, now, key);
  const ttl = decoded === null ? 0 : engine.ttl(decoded.meta, now);
  // Corrupt or past its deadline: the read says so, and the record's TTL removes it.
  if (decoded === null || ttl <= 0) return raw;
  const owner = config.owner === undefined ? undefined : decoded.meta.owner;
  await indexOwner(engine, id, owner, decoded.meta);
  const moved = await call("create", key, () => store.create(key, raw, ttl));
  await call("destroy", id, () => store.destroy(id));
  if (owner !== undefined && config.indexed) await call("owners.remove", id, () => store.owners!.remove(owner, id));
  if (moved) return raw;
  // Another request moved it first.
  const current = await getRecord(engine, key, undefined);
  return current === null || typeof current === "string" ? current : current.record;
}
