import { lifetimeFromMs } from "./lifetime.js";
import type { SessionCookieFacts } from "./compat/express-session.js";

/** What a {@link SessionCookie} needs from the manager, for its session. */
export interface CookieSource {
  facts(): SessionCookieFacts;
  setLifetime(seconds: number | undefined): void;
}

/**
 * `session.cookie`: express-session's and @fastify/session's cookie object, read from the manager's
 * cookie options and the request. `maxAge` and `expires` are writable and set the session's own
 * lifetime (milliseconds, and a date, as there), stored with the session: `session.setLifetime()`.
 */
export class SessionCookie {
  readonly #source: CookieSource;

  constructor(source: CookieSource) {
    this.#source = source;
  }

  /** Milliseconds until the cookie expires, `null` for a browser-session cookie. Set: the session's lifetime in ms (`null`: the default). */
  get maxAge(): number | null {
    const { expiresAt } = this.#source.facts();
    return expiresAt === undefined ? null : Math.max(0, expiresAt - Date.now());
  }

  set maxAge(ms: number | null) {
    this.#source.setLifetime(lifetimeFromMs(ms, "cookie.maxAge"));
  }

  /** When the cookie expires, `null` for a browser-session cookie. Set: the session lives until then (`null`: the default). */
  get expires(): Date | null {
    const { expiresAt } = this.#source.facts();
    return expiresAt === undefined ? null : new Date(expiresAt);
  }

  set expires(date: Date | null) {
    if (date === null || date === undefined) {
      this.#source.setLifetime(undefined);
      return;
    }
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new TypeError(`[shared-session] cookie.expires is a Date, or null for the default; got ${String(date)}`);
    this.#source.setLifetime(lifetimeFromMs(date.getTime() - Date.now(), "cookie.expires (its time from now)"));
  }

  /** The lifetime in milliseconds as set (the session's own, else `cookie.maxAge`), `null` for a browser-session cookie. */
  get originalMaxAge(): number | null {
    const { lifetime } = this.#source.facts();
    return lifetime === undefined ? null : lifetime * 1000;
  }

  get secure(): boolean {
    return this.#source.facts().secure;
  }

  get httpOnly(): boolean {
    return this.#source.facts().httpOnly;
  }

  get path(): string {
    return this.#source.facts().path;
  }

  get domain(): string | undefined {
    return this.#source.facts().domain;
  }

  get sameSite(): "lax" | "strict" | "none" {
    return this.#source.facts().sameSite;
  }

  toJSON(): Record<string, unknown> {
    return {
      originalMaxAge: this.originalMaxAge,
      expires: this.expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      path: this.path,
      domain: this.domain,
      sameSite: this.sameSite,
    };
  }
}
