import { createHash } from "node:crypto";
import type { StoreUnavailableError } from "./errors.js";
import type { SessionLogEntry, SessionLogger } from "./types.js";

/** Events a manager emits. Ids appear only hashed. */
export interface SessionEvents {
  /** A new session was first written. */
  created: { session: string };
  /** `regenerate()` replaced `from` by a fresh id (the new id is hashed when it is first written). */
  regenerated: { from: string };
  /** A session was destroyed by the app. */
  destroyed: { session: string };
  /**
   * A session ended by expiry, reported when the library learns of it: past its absolute deadline when
   * loaded (`absolute`), or its record gone from the store while the owner index still names it, found
   * by `listSessions` and the owner calls (`idle`). `owner` when the record named one.
   */
  expired: { session: string; owner?: string; reason?: "absolute" | "idle" };
  /** A session was destroyed to make room for a newer one of its owner (`maxSessionsPerOwner`, `"evict-least-active"`). */
  evicted: { session: string; owner: string };
  /** A session was refused because its owner's sessions were revoked after it was issued ({@link SessionManager.revokeOwnerSessions}). */
  revoked: { session: string; owner: string };
  /** A cookie failed the signature or id check, or named a session the store does not know. */
  rejected: { reason: "signature" | "unknown" | "corrupt" };
  /** A store call failed or timed out. */
  storeError: { operation: string; error: StoreUnavailableError };
}

export type SessionEventName = keyof SessionEvents;

/**
 * 16 hex digits of SHA-256 of `value`: never the value itself. The manager's logs, events, traces and
 * listings show `hashId(storeKey)`, which {@link SessionManager.hashOf} computes from an id.
 */
export function hashId(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}

type Listener<E extends SessionEventName> = (payload: SessionEvents[E]) => void;

/**
 * A manager's events and log lines. Session ids never reach either: `hash` turns an id into what
 * they show (the hash of its store key).
 */
export class Events {
  readonly #listeners = new Map<SessionEventName, Set<Listener<never>>>();
  readonly #logger: SessionLogger | undefined;
  readonly #hash: (id: string) => string;

  constructor(logger: SessionLogger | undefined, hash: (id: string) => string) {
    this.#logger = logger;
    this.#hash = hash;
  }

  /** Subscribe to an event; returns the function that unsubscribes. */
  on<E extends SessionEventName>(event: E, listener: Listener<E>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    const stored = listener as Listener<never>;
    set.add(stored);
    return () => set.delete(stored);
  }

  emit<E extends SessionEventName>(event: E, payload: SessionEvents[E]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<E>)(payload);
      } catch (err) {
        this.log("error", "listener.error", `a ${event} listener threw`, undefined, err);
      }
    }
  }

  /** A log line; `id`, a session id, appears hashed. */
  log(level: SessionLogEntry["level"], event: string, message: string, id?: string, error?: unknown): void {
    if (this.#logger === undefined) return;
    const entry: { -readonly [K in keyof SessionLogEntry]: SessionLogEntry[K] } = { level, event, message };
    if (id !== undefined) entry.session = this.#hash(id);
    if (error !== undefined) entry.error = error;
    try {
      this.#logger(entry);
    } catch {
      // a broken logger must not break requests
    }
  }
}
