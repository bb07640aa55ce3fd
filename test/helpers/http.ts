/** A small HTTP client for binding tests: no redirects followed, every Set-Cookie kept apart. */

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** Every `Set-Cookie` header, in order. */
  setCookies: string[];
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestInit {
  method?: string;
  /** Value of the `Cookie` header. */
  cookie?: string;
  headers?: Record<string, string>;
}

export async function request(base: string, path: string, init: RequestInit = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  const response = await fetch(new URL(path, base), { method: init.method ?? "GET", headers, redirect: "manual" });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    setCookies: response.headers.getSetCookie(),
    text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}

export interface ParsedCookie {
  name: string;
  value: string;
  /** Attribute names lower-cased, mapped to their value (`true` for flags). */
  attributes: Map<string, string | true>;
}

export function parseSetCookie(header: string): ParsedCookie {
  const [pair, ...rest] = header.split(";");
  const eq = pair!.indexOf("=");
  const attributes = new Map<string, string | true>();
  for (const part of rest) {
    const trimmed = part.trim();
    const at = trimmed.indexOf("=");
    if (at === -1) attributes.set(trimmed.toLowerCase(), true);
    else attributes.set(trimmed.slice(0, at).toLowerCase(), trimmed.slice(at + 1));
  }
  return { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), attributes };
}

/** The one session cookie a response set (fails when there is none or several). */
export function sessionCookie(response: HttpResponse, name = "sid"): ParsedCookie {
  const ours = response.setCookies.map(parseSetCookie).filter((c) => c.name === name);
  if (ours.length !== 1) throw new Error(`expected exactly one ${name} cookie, got ${JSON.stringify(response.setCookies)} (status ${response.status}: ${response.text.slice(0, 200)})`);
  return ours[0]!;
}

/** `name=value`, ready for a `Cookie` header. */
export function cookieHeader(cookie: ParsedCookie): string {
  return `${cookie.name}=${cookie.value}`;
}

/** The session id a signed cookie value carries (`<id>.<signature>`). */
export function idOf(cookie: ParsedCookie): string {
  return cookie.value.slice(0, cookie.value.lastIndexOf("."));
}

/** The cookie expires the client's copy (`Max-Age=0`). */
export function isClearing(cookie: ParsedCookie): boolean {
  return cookie.value === "" && cookie.attributes.get("max-age") === "0";
}
