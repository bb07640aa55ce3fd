/**
 * The stored record, shared by every store and every binding (version 1):
 *
 *   {"v":1,"createdAt":<ms>,"expiresAt":<ms>,"writtenAt":<ms>}\n<data>
 *
 * Line one is JSON metadata: format version, creation time, the absolute deadline that nothing
 * extends, and the time of the last write (all Unix milliseconds), plus `owner` when an owner
 * index is in use and `lifetime` (seconds) when the session has its own ({@link isLifetime}; records
 * without it, as every record written before it existed, use the manager's `idleTimeout`). Everything after the first newline is the session data as the serializer wrote
 * it (JSON by default). Keeping the data apart lets change detection compare the data text as
 * loaded with the text about to be written, without re-serializing on read.
 */
import { isLifetime } from "./lifetime.js";

export const RECORD_VERSION = 1;

export interface RecordMeta {
  createdAt: number;
  expiresAt: number;
  writtenAt: number;
  owner?: string;
  /** When `owner` was set (Unix ms), for revocation marks ("sessions owned before T are revoked"). */
  ownedAt?: number;
  /** The session's own lifetime in seconds ("remember me"): its store TTL and cookie `Max-Age`. */
  lifetime?: number;
}

/** How session data becomes text and back. `parse` may throw on bad input; the core catches it. */
export interface Serializer {
  stringify(data: Record<string, unknown>): string;
  parse(text: string): unknown;
}

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function dropUnsafe(key: string, value: unknown): unknown {
  return UNSAFE_KEYS.has(key) ? undefined : value;
}

/**
 * JSON, with the keys `__proto__`, `constructor` and `prototype` dropped at every depth when the
 * text contains one of them (the reviver only runs then, so the common path costs nothing).
 */
export const jsonSerializer: Serializer = {
  stringify: (data) => JSON.stringify(data),
  parse: (text) =>
    text.includes("__proto__") || text.includes("constructor") || text.includes("prototype") ? JSON.parse(text, dropUnsafe) : JSON.parse(text),
};

export function encodeRecord(meta: RecordMeta, dataText: string): string {
  let head =
    meta.owner === undefined
      ? `{"v":1,"createdAt":${meta.createdAt},"expiresAt":${meta.expiresAt},"writtenAt":${meta.writtenAt}`
      : `{"v":1,"createdAt":${meta.createdAt},"expiresAt":${meta.expiresAt},"writtenAt":${meta.writtenAt},"owner":${JSON.stringify(meta.owner)}${meta.ownedAt === undefined ? "" : `,"ownedAt":${meta.ownedAt}`}`;
  if (meta.lifetime !== undefined) head += `,"lifetime":${meta.lifetime}`;
  return `${head}}\n${dataText}`;
}

export interface DecodedRecord {
  readonly meta: RecordMeta;
  readonly dataText: string;
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Parse the metadata line; `null` for anything that is not a well-formed version-1 record. */
export function decodeRecord(raw: string): DecodedRecord | null {
  const nl = raw.indexOf("\n");
  if (nl <= 0) return null;
  let head: unknown;
  try {
    head = JSON.parse(raw.slice(0, nl));
  } catch {
    return null;
  }
  if (typeof head !== "object" || head === null || Array.isArray(head)) return null;
  const h = head as Record<string, unknown>;
  if (h.v !== RECORD_VERSION || !isTime(h.createdAt) || !isTime(h.expiresAt) || !isTime(h.writtenAt)) return null;
  if (h.owner !== undefined && typeof h.owner !== "string") return null;
  const meta: RecordMeta = { createdAt: h.createdAt, expiresAt: h.expiresAt, writtenAt: h.writtenAt };
  if (typeof h.owner === "string") meta.owner = h.owner;
  if (meta.owner !== undefined && isTime(h.ownedAt)) meta.ownedAt = h.ownedAt;
  if (h.lifetime !== undefined) {
    if (!isLifetime(h.lifetime)) return null;
    meta.lifetime = h.lifetime;
  }
  return { meta, dataText: raw.slice(nl + 1) };
}

/**
 * Deepest nesting of objects and arrays a record's data may have. A record written from outside with
 * thousands of levels parses, but every later `JSON.stringify` of it overflows the stack: such a
 * record is corrupt, not a 500 on every request.
 */
export const MAX_DATA_DEPTH = 128;

/** Whether `value` nests objects deeper than `left` more levels. Visits objects only, never text. */
function tooDeep(value: object, left: number): boolean {
  if (left === 0) return true;
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === "object" && v !== null && tooDeep(v, left - 1)) return true;
  }
  return false;
}

/** Parse data text into a plain object, or `null` when it is not one (or nests deeper than {@link MAX_DATA_DEPTH}). Never throws. */
export function parseData(serializer: Serializer, text: string): Record<string, unknown> | null {
  let data: unknown;
  try {
    data = serializer.parse(text);
    if (typeof data !== "object" || data === null || Array.isArray(data)) return null;
    if (tooDeep(data, MAX_DATA_DEPTH)) return null;
  } catch {
    return null;
  }
  return data as Record<string, unknown>;
}
