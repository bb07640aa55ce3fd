import type { State } from "./engine.js";
import type { Data } from "./options.js";
import { unindexOwner } from "./owner-index.js";
import { clearData, rebindSession, sessionFor } from "./session-object.js";
import { handOver } from "./session-swap.js";
import { write } from "./write.js";

/**
 * The session methods that act on the store at once: `regenerate()`, `destroy()`, `save()`,
 * `touch()` (`reload()` is a read: read.ts). Each runs tracked, so that commit waits for it.
 */

/** What `regenerate()` keeps. */
export interface RegenerateRequest {
  readonly keep?: readonly string[];
  readonly renewDeadline?: boolean;
}

/**
 * A fresh id and, unless `keep` names keys, empty data (what express-session, Passport and
 * @fastify/session expect: nothing an attacker planted before a login survives it). The absolute
 * deadline carries over unless `renewDeadline`: regenerating never makes a session live longer.
 */
export async function regenerate(session: Data, state: State, options: RegenerateRequest): Promise<void> {
  const engine = state.engine;
  engine.refuseIfUnusable(state);
  const old = state.id;
  const { createdAt, expiresAt } = state.meta;
  if (state.persisted && old !== null) {
    const key = engine.keyOf(old);
    await engine.call("destroy", key, () => engine.store.destroy(key));
    await unindexOwner(engine, old, state.meta.owner, undefined);
  }
  const keep = options.keep;
  // With a binding's slot (Express, Koa), the old object keeps its data as a detached snapshot.
  const slot = state.slot;
  const snapshot = slot === undefined ? undefined : state.snapshot();
  if (slot === undefined) for (const key of Object.keys(session)) if (keep === undefined || !keep.includes(key)) delete session[key];
  state.restart();
  if (options.renewDeadline !== true) {
    state.meta.createdAt = createdAt;
    state.meta.expiresAt = expiresAt;
  }
  state.forceSave = true;
  state.clearCookie = true;
  if (slot !== undefined) {
    const next = sessionFor(state);
    snapshot!.replacedBy = next;
    rebindSession(session, snapshot!);
    handOver(slot, session, next, keep);
  }
  if (old !== null) engine.events.emit("regenerated", { from: engine.hash(old) });
}

/** Delete the stored session; the request goes on with a new, empty one, and the cookie is expired. */
export async function destroy(session: Data, state: State): Promise<void> {
  const engine = state.engine;
  engine.refuseIfUnusable(state);
  const old = state.id;
  if (state.persisted && old !== null) {
    const key = engine.keyOf(old);
    await engine.call("destroy", key, () => engine.store.destroy(key));
    await unindexOwner(engine, old, state.meta.owner, undefined);
    engine.events.emit("destroyed", { session: engine.hash(old) });
  }
  clearData(session);
  state.restart();
  state.clearCookie = true;
}

/** Write now, even a new session without data. */
export async function save(session: Data, state: State): Promise<void> {
  state.engine.refuseIfUnusable(state);
  await write(session, state, { saveCalled: true });
}

/** Reset the stored session's TTL without writing it; a persistent cookie is re-sent, its lifetime rolled. */
export async function touch(session: Data, state: State): Promise<void> {
  const engine = state.engine;
  engine.refuseIfUnusable(state);
  if (!state.persisted || state.id === null) return;
  const ttl = engine.ttl(state.meta, Date.now());
  const key = engine.keyOf(state.id);
  const ok = ttl > 0 && (await engine.call("touch", key, () => engine.store.touch(key, ttl)));
  if (!ok) {
    clearData(session);
    engine.continueWithoutRecord(state);
    return;
  }
  state.lifetimeRolled = true;
}
