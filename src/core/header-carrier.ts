import { SessionConfigError } from "./errors.js";

/**
 * The `header` option: the signed session id in a request header, for API and mobile clients that
 * keep no cookies. Checked exactly like the cookie (signature, id format, strict mode).
 */
export interface HeaderCarrierOptions {
  /**
   * Request header that carries the signed id. `"authorization"` reads `Authorization: Bearer <token>`;
   * any other name reads the header's whole value as the token.
   * @default "authorization"
   */
  name?: string;
  /**
   * Response header that hands out the token when a session is created or its id changes
   * (`regenerate()`, or a re-signature after a secret rotation).
   * @default "x-session-token" with `authorization`, else `name`
   */
  response?: string;
}

/** A header carrier, resolved once at construction. */
export interface HeaderCarrier {
  /** Lower-case name of the request header (as Node's `req.headers` keys it). */
  readonly request: string;
  /** Name of the response header. */
  readonly response: string;
  /** The token a request header value carries, `undefined` when the header is absent or empty, `null` when malformed. */
  read(value: unknown): string | undefined | null;
}

const TOKEN_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BEARER = /^Bearer +([^\s]+) *$/i;

export function resolveHeaderCarrier(options: HeaderCarrierOptions | undefined): HeaderCarrier | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) throw new SessionConfigError('header must be an object such as { name: "authorization" }');
  const request = (options.name ?? "authorization").toLowerCase();
  if (typeof options.name !== "undefined" && (typeof options.name !== "string" || !TOKEN_NAME.test(options.name))) {
    throw new SessionConfigError(`header.name must be an HTTP header name, got ${JSON.stringify(options.name)}`);
  }
  if (request === "cookie" || request === "set-cookie") throw new SessionConfigError("header.name cannot be the cookie header");
  const response = options.response ?? (request === "authorization" ? "x-session-token" : request);
  if (typeof response !== "string" || !TOKEN_NAME.test(response)) {
    throw new SessionConfigError(`header.response must be an HTTP header name, got ${JSON.stringify(options.response)}`);
  }
  const bearer = request === "authorization";
  return {
    request,
    response,
    read(value) {
      if (typeof value !== "string") return value === undefined || value === null ? undefined : null;
      const trimmed = value.trim();
      if (trimmed === "") return undefined;
      if (!bearer) return trimmed;
      // Another scheme (Basic, a JWT the app reads itself…) is not ours: no session token.
      if (!/^bearer(\s|$)/i.test(trimmed)) return undefined;
      return BEARER.exec(trimmed)?.[1] ?? null;
    },
  };
}
