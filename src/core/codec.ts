import type { ResolvedCookie } from "./cookie.js";
import { isLifetime } from "./lifetime.js";
import { decodeRecord, encodeRecord, jsonSerializer, parseData, type RecordMeta, type Serializer } from "./record.js";
import { sign } from "./signing.js";
import type { Verified, Verifier } from "./verifier.js";

/** A record as the manager works with it, whatever its layout in the store. */
export interface LoadedRecord {
  readonly meta: RecordMeta;
  /** The data as the serializer writes it: change detection compares against this text. */
  readonly dataText: string;
  readonly data: Record<string, unknown>;
  /** Written in the express-session + connect-redis layout. */
  readonly legacy: boolean;
  /** An express-session record without our metadata: its deadline was just assigned and must be stored. */
  readonly deadlineAssigned?: boolean;
  /** Encrypted under a key other than the first: rewrite it under the first. */
  readonly reseal?: boolean;
}

export interface ReadCookie extends Verified {
  /** Came in express-session's `s:` form. */
  readonly legacy: boolean;
}

/** How cookie values and stored records look. Native, or express-session's during a migration. */
export interface Codec {
  readCookie(value: string): ReadCookie | null;
  writeCookie(id: string): string;
  /** `key` is the record's store key (what an encrypted record is bound to). */
  decode(raw: string, now: number, key: string): LoadedRecord | null;
  encode(meta: RecordMeta, dataText: string, data: Record<string, unknown>, secure: boolean, key: string): string;
}

export interface CodecContext {
  readonly secrets: readonly string[];
  /** The manager's own verifier of `secrets` (with its cache). */
  readonly verifier: Verifier;
  readonly validateId: (id: string) => boolean;
  readonly serializer: Serializer;
  readonly cookie: ResolvedCookie;
  readonly cookieOptions: { path: string; domain: string | undefined; httpOnly: boolean; sameSite: string };
  readonly absoluteTimeout: number;
}

export function nativeCodec(ctx: CodecContext): Codec {
  return {
    readCookie(value) {
      const verified = ctx.verifier.verify(value, ctx.validateId);
      // A literal, not a spread: this runs on every request with a cookie, and object spread costs more (see bench/).
      return verified && { id: verified.id, secretIndex: verified.secretIndex, legacy: false };
    },
    writeCookie: (id) => sign(id, ctx.secrets),
    decode(raw) {
      const decoded = decodeRecord(raw);
      const data = decoded && parseData(ctx.serializer, decoded.dataText);
      return decoded && data ? { meta: decoded.meta, dataText: decoded.dataText, data, legacy: false } : null;
    },
    encode: (meta, dataText) => encodeRecord(meta, dataText),
  };
}

/** Key under which our metadata rides inside an express-session record. */
export const LEGACY_META_KEY = "sharedSession";
/** express-session's ids: uid-safe, 24 random bytes as base64url. */
const LEGACY_ID = /^[A-Za-z0-9_-]{32}$/;

/**
 * express-session + connect-redis compatibility. Reads both layouts; writes express-session's when
 * `writeLegacy` (old processes still serve users), else ours (migrating records as they are used).
 */
export function expressSessionCodec(ctx: CodecContext, writeLegacy: boolean): Codec {
  // Ids express-session made stay valid in both cookie forms (a converted cookie keeps its id).
  const validate = (id: string) => ctx.validateId(id) || LEGACY_ID.test(id);
  const native = nativeCodec({ ...ctx, validateId: validate });
  return {
    readCookie(value) {
      let decoded = value;
      if (value.startsWith("s%3A") || value.startsWith("s%3a")) {
        try {
          decoded = decodeURIComponent(value);
        } catch {
          return null;
        }
      }
      if (!decoded.startsWith("s:")) return native.readCookie(value);
      const verified = ctx.verifier.verify(decoded.slice(2), validate);
      return verified && { id: verified.id, secretIndex: verified.secretIndex, legacy: true };
    },
    writeCookie: (id) => (writeLegacy ? encodeURIComponent(`s:${sign(id, ctx.secrets)}`) : sign(id, ctx.secrets)),
    decode(raw, now, key) {
      if (raw.startsWith('{"v":')) return native.decode(raw, now, key);
      const parsed = parseData(jsonSerializer, raw);
      if (!parsed || typeof parsed.cookie !== "object" || parsed.cookie === null) return null;
      const { cookie, [LEGACY_META_KEY]: ours, ...data } = parsed;
      const meta = legacyMeta(ours);
      if (meta !== null) return { meta, dataText: ctx.serializer.stringify(data), data, legacy: true };
      // Made by express-session: no deadline of ours yet. Count it from the record's last save when the
      // cookie says (expires - originalMaxAge), else from now; the manager stores it at once, so the
      // next request finds it and the deadline never moves again.
      const createdAt = Math.min(now, lastSave(cookie) ?? now);
      const assigned = { createdAt, expiresAt: createdAt + ctx.absoluteTimeout * 1000, writtenAt: now };
      return { meta: assigned, dataText: ctx.serializer.stringify(data), data, legacy: true, deadlineAssigned: true };
    },
    encode(meta, dataText, data, secure, key) {
      if (!writeLegacy) return native.encode(meta, dataText, data, secure, key);
      const maxAge = meta.lifetime ?? ctx.cookie.maxAge;
      const o = ctx.cookieOptions;
      // The cookie object express-session rebuilds its Cookie from (it crashes without one).
      const cookie = {
        originalMaxAge: maxAge === undefined ? null : maxAge * 1000,
        expires: maxAge === undefined ? null : new Date(meta.writtenAt + maxAge * 1000).toISOString(),
        secure: ctx.cookie.secure ?? secure,
        httpOnly: o.httpOnly,
        ...(o.domain === undefined ? {} : { domain: o.domain }),
        path: o.path,
        sameSite: o.sameSite,
      };
      const { cookie: _ignored, ...rest } = data;
      return JSON.stringify({ cookie, ...rest, [LEGACY_META_KEY]: meta });
    },
  };
}

/** When express-session last saved a record, from its cookie (`expires` - `originalMaxAge`), if it says. */
function lastSave(cookie: unknown): number | undefined {
  const c = cookie as { expires?: unknown; originalMaxAge?: unknown };
  if (typeof c.expires !== "string" || typeof c.originalMaxAge !== "number" || !(c.originalMaxAge > 0)) return undefined;
  const at = Date.parse(c.expires) - c.originalMaxAge;
  return Number.isSafeInteger(at) && at > 0 ? at : undefined;
}

function legacyMeta(value: unknown): RecordMeta | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (!ok(v.createdAt) || !ok(v.expiresAt) || !ok(v.writtenAt)) return null;
  const meta: RecordMeta = { createdAt: v.createdAt, expiresAt: v.expiresAt, writtenAt: v.writtenAt };
  if (typeof v.owner === "string") meta.owner = v.owner;
  if (meta.owner !== undefined && typeof v.ownedAt === "number" && Number.isSafeInteger(v.ownedAt)) meta.ownedAt = v.ownedAt;
  if (isLifetime(v.lifetime)) meta.lifetime = v.lifetime;
  return meta;
}
