import { SessionConfigError } from "./errors.js";

/** Attributes of the session cookie. */
export interface CookieOptions {
  /**
   * `Path` attribute.
   * @default "/"
   */
  path?: string;
  /** `Domain` attribute; omitted by default (host-only cookie). */
  domain?: string;
  /**
   * `SameSite` attribute.
   * @default "lax"
   */
  sameSite?: "lax" | "strict" | "none";
  /**
   * `Secure` attribute: `"auto"` sets it when the request came over HTTPS (as the framework sees it,
   * honouring its trust-proxy setting). Forced on for `__Host-`/`__Secure-` names and `sameSite: "none"`.
   * @default "auto"
   */
  secure?: boolean | "auto";
  /**
   * `HttpOnly` attribute: keeps the cookie from page scripts.
   * @default true
   */
  httpOnly?: boolean;
  /**
   * `Max-Age` in seconds. Unset (the default) sends a browser-session cookie. When set, the cookie is
   * re-sent as the session is used (at most once per `touchAfter`) so its lifetime rolls.
   */
  maxAge?: number;
  /** `Partitioned` attribute (CHIPS); requires `Secure`. @default false */
  partitioned?: boolean;
  /** `Priority` attribute (Chromium). Omitted by default. */
  priority?: "low" | "medium" | "high";
}

export interface ResolvedCookie {
  readonly name: string;
  /** `undefined` means decide per request. */
  readonly secure: boolean | undefined;
  readonly maxAge: number | undefined;
  /** Attributes after the value, without Secure; precomputed once. */
  readonly tail: string;
  readonly clearTail: string;
  /** `tail` without `Max-Age`, split where a session's own `Max-Age` goes (see {@link serializeCookieMaxAge}). */
  readonly attrs: string;
  readonly flags: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PATH_VALUE = /^[\x20-\x3a\x3c-\x7e]+$/;
const DOMAIN_VALUE = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

const PRIORITIES: Readonly<Record<string, string>> = { low: "Low", medium: "Medium", high: "High" };

/** `low`, `medium` or `high` in any case; anything else (such as `"High; Domain=x"`) is refused. */
function resolvePriority(priority: unknown): string | undefined {
  if (priority === undefined) return undefined;
  const name = typeof priority === "string" ? PRIORITIES[priority.toLowerCase()] : undefined;
  if (name === undefined || !Object.hasOwn(PRIORITIES, (priority as string).toLowerCase())) {
    throw new SessionConfigError(`cookie.priority must be "low", "medium" or "high", got ${JSON.stringify(priority)}`);
  }
  return name;
}

/** Check cookie options once, at construction, and precompute the attribute string. */
export function resolveCookie(name: string, options: CookieOptions = {}): ResolvedCookie {
  if (!TOKEN.test(name)) throw new SessionConfigError(`cookie name ${JSON.stringify(name)} is not a valid cookie name token`);
  const path = options.path ?? "/";
  if (!PATH_VALUE.test(path)) throw new SessionConfigError(`cookie.path ${JSON.stringify(path)} contains characters not allowed in a cookie path`);
  const domain = options.domain;
  if (domain !== undefined && !DOMAIN_VALUE.test(domain)) throw new SessionConfigError(`cookie.domain ${JSON.stringify(domain)} is not a valid domain`);
  const sameSite = options.sameSite ?? "lax";
  if (sameSite !== "lax" && sameSite !== "strict" && sameSite !== "none") {
    throw new SessionConfigError(`cookie.sameSite must be "lax", "strict" or "none", got ${JSON.stringify(sameSite)}`);
  }
  const maxAge = options.maxAge;
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && maxAge > 0)) {
    throw new SessionConfigError(`cookie.maxAge must be a whole number of seconds > 0, got ${String(maxAge)}`);
  }
  let secure: boolean | undefined = options.secure === undefined || options.secure === "auto" ? undefined : options.secure;
  const lower = name.toLowerCase();
  const mustBeSecure = lower.startsWith("__host-") || lower.startsWith("__secure-") || sameSite === "none" || options.partitioned === true;
  if (mustBeSecure) {
    if (secure === false) {
      throw new SessionConfigError(`cookie ${name} needs Secure (a __Host-/__Secure- name, sameSite "none" or partitioned), but cookie.secure is false`);
    }
    secure = true;
  }
  if (lower.startsWith("__host-")) {
    if (domain !== undefined) throw new SessionConfigError(`a __Host- cookie must not have a domain, got ${JSON.stringify(domain)}`);
    if (path !== "/") throw new SessionConfigError(`a __Host- cookie must have path "/", got ${JSON.stringify(path)}`);
  }
  let attrs = `; Path=${path}`;
  if (domain !== undefined) attrs += `; Domain=${domain}`;
  let flags = "";
  if (options.httpOnly !== false) flags += "; HttpOnly";
  flags += `; SameSite=${sameSite === "lax" ? "Lax" : sameSite === "strict" ? "Strict" : "None"}`;
  if (options.partitioned) flags += "; Partitioned";
  const priority = resolvePriority(options.priority);
  if (priority !== undefined) flags += `; Priority=${priority}`;
  return {
    name,
    secure,
    maxAge,
    tail: attrs + (maxAge !== undefined ? `; Max-Age=${maxAge}` : "") + flags,
    attrs,
    flags,
    clearTail: `${attrs}; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0${flags}`,
  };
}

export function serializeCookie(cookie: ResolvedCookie, value: string, secure: boolean): string {
  return `${cookie.name}=${value}${cookie.tail}${secure ? "; Secure" : ""}`;
}

/** {@link serializeCookie} with a session's own `Max-Age` (seconds) instead of `cookie.maxAge`. */
export function serializeCookieMaxAge(cookie: ResolvedCookie, value: string, secure: boolean, maxAge: number): string {
  return `${cookie.name}=${value}${cookie.attrs}; Max-Age=${maxAge}${cookie.flags}${secure ? "; Secure" : ""}`;
}

export function serializeClearCookie(cookie: ResolvedCookie, secure: boolean): string {
  return `${cookie.name}=${cookie.clearTail}${secure ? "; Secure" : ""}`;
}

/**
 * Every value the `Cookie` header carries for `name`, in order (browsers send the most specific
 * path first; duplicates happen). No percent-decoding: our values never need it, and anything
 * that does is not ours. Never throws. Stops after `limit` values.
 */
export function cookieValues(header: string | undefined | null, name: string, limit = Infinity): string[] {
  const found: string[] = [];
  if (typeof header !== "string" || header.length === 0) return found;
  let start = 0;
  const len = header.length;
  while (start < len && found.length < limit) {
    let end = header.indexOf(";", start);
    if (end === -1) end = len;
    const eq = header.indexOf("=", start);
    if (eq !== -1 && eq < end) {
      let keyStart = start;
      let keyEnd = eq;
      while (keyStart < keyEnd && header.charCodeAt(keyStart) === 0x20) keyStart++;
      while (keyEnd > keyStart && header.charCodeAt(keyEnd - 1) === 0x20) keyEnd--;
      if (keyEnd - keyStart === name.length && header.startsWith(name, keyStart)) {
        let valueStart = eq + 1;
        let valueEnd = end;
        while (valueStart < valueEnd && header.charCodeAt(valueStart) === 0x20) valueStart++;
        while (valueEnd > valueStart && header.charCodeAt(valueEnd - 1) === 0x20) valueEnd--;
        if (valueEnd - valueStart >= 2 && header.charCodeAt(valueStart) === 0x22 && header.charCodeAt(valueEnd - 1) === 0x22) {
          valueStart++;
          valueEnd--;
        }
        found.push(header.slice(valueStart, valueEnd));
      }
    }
    start = end + 1;
  }
  return found;
}
