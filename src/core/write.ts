import type { Engine, State, Stored, WriteQueue } from "./engine.js";
import { SessionError, SessionTooLargeError, StoreUnavailableError } from "./errors.js";
import { applyChanges, changesBetween } from "./merge.js";
import type { Data } from "./options.js";
import { indexOwner, ownerChecked, ownerOf, unindexOwner } from "./owner-index.js";
import { EVICTED_RECORD, withTouch } from "./owners.js";
import { parseData, type RecordMeta } from "./record.js";
import { RESERVED } from "./reserved.js";
import { assignData, clearData } from "./session-object.js";

/**
 * Why a session must be written now:
 * - `new`: a new session has data;
 * - `regenerated`: `regenerate()` made a new id, stored even with no data;
 * - `saved`: `save()` was called on a new session;
 * - `changed`: a stored session's data changed;
 * - `rewrite`: unchanged data, but a touch is due or the record's metadata or form changed.
 * `null`: nothing to write.
 */
export type WriteReason = "new" | "regenerated" | "saved" | "changed" | "rewrite";

/** The one answer to "must this session be written?", for commit, `save()` and `isModified()`. */
export function whyWrite(state: State, dataText: string, { saveCalled }: { saveCalled: boolean }): WriteReason | null {
  if (state.stored === null) {
    if (dataText !== state.engine.config.emptyText) return "new";
    if (state.forceSave) return "regenerated";
    return saveCalled ? "saved" : null;
  }
  if (dataText !== state.stored.text) return "changed";
  return state.rewrite ? "rewrite" : null;
}

/** Create attempts with a new id each when an id already exists. */
const CREATE_ATTEMPTS = 3;
/** Conflicts one write may meet before giving up: each is another request's write landing first. */
const MERGE_ATTEMPTS = 100;
/** Longest pause between two compare-and-set attempts after conflicts, in ms (full jitter below it). */
const MAX_BACKOFF_MS = 64;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Write the session if {@link whyWrite} says so; returns whether a write happened. `data` and
 * `dataText` when the caller already has them.
 */
export async function write(
  session: Data,
  state: State,
  options: { saveCalled: boolean },
  data: Data = { ...session },
  dataText: string = state.engine.config.serializer.stringify(data),
): Promise<boolean> {
  const reason = whyWrite(state, dataText, options);
  if (reason === null) return false;
  if (state.stored === null) return ownerChecked(session, state, undefined, await create(state, dataText, data));
  const engine = state.engine;
  const { store, call } = engine;
  const now = Date.now();
  const ttl = engine.ttl(state.meta, now);
  const id = state.id!;
  const key = engine.keyOf(id);
  if (ttl <= 0) {
    // The absolute deadline passed during the request.
    await call("destroy", key, () => store.destroy(key));
    clearData(session);
    engine.continueWithoutRecord(state);
    return false;
  }
  const previousOwner = state.meta.owner;
  const meta = metaFor(state.meta, now, ownerOf(engine, data));
  const record = encode(engine, meta, dataText, data, state.secure, key);
  if (meta.owner !== previousOwner) await indexOwner(engine, id, meta.owner, meta);
  // Same owner: re-score its index entry with the write ("evict-least-active"), in the same round trip.
  const touched = meta.owner === previousOwner ? engine.owners.touchEntry(meta, key, now) : undefined;
  if (store.capabilities.compareAndSet) {
    const wrote = await withTouch(
      afterOtherWrites(engine, id, state, (latest) => compareAndSet(session, state, key, { text: dataText, record, meta }, latest)),
      touched,
    );
    if (wrote) await engine.owners.touchLater(state.meta, key, now);
    if (state.persisted) await unindexOwner(engine, id, previousOwner, state.meta.owner);
    return ownerChecked(session, state, previousOwner, wrote);
  }
  const ok = await withTouch(call("update", key, () => store.update(key, record, ttl)), touched);
  if (!ok) {
    clearData(session);
    engine.continueWithoutRecord(state);
    return false;
  }
  markStored(state, meta, { text: dataText, record, version: undefined });
  await engine.owners.touchLater(meta, key, now);
  await unindexOwner(engine, id, previousOwner, meta.owner);
  return ownerChecked(session, state, previousOwner, true);
}

/** Metadata for a write at `now`, naming `owner` (or none). */
function metaFor(base: RecordMeta, now: number, owner: string | undefined): RecordMeta {
  const meta: RecordMeta = { createdAt: base.createdAt, expiresAt: base.expiresAt, writtenAt: now };
  if (owner !== undefined) {
    meta.owner = owner;
    // When the owner was set: a revocation mark ("owned before T") compares with it.
    const ownedAt = owner === base.owner ? base.ownedAt : now;
    if (ownedAt !== undefined) meta.ownedAt = ownedAt;
  }
  if (base.lifetime !== undefined) meta.lifetime = base.lifetime;
  return meta;
}

function encode(engine: Engine, meta: RecordMeta, dataText: string, data: Data, secure: boolean, key: string): string {
  const record = engine.config.codec.encode(meta, dataText, data, secure, key);
  const maxSize = engine.config.maxSize;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: skip counting when it cannot be over.
  if (record.length * 3 > maxSize) {
    const size = Buffer.byteLength(record);
    if (size > maxSize) throw new SessionTooLargeError(size, maxSize);
  }
  return record;
}

/** The store now holds `stored` with `meta`, as this request wrote or found it. */
function markStored(state: State, meta: RecordMeta, stored: Stored): void {
  state.meta = meta;
  state.stored = stored;
  state.rewrite = false;
}

/** A new session's first write: create-if-absent under a new id, another id when one is taken. */
async function create(state: State, dataText: string, data: Data): Promise<boolean> {
  const engine = state.engine;
  const { store, call, events } = engine;
  const now = Date.now();
  const owner = ownerOf(engine, data);
  const meta = metaFor(state.meta, now, owner);
  const ttl = engine.ttl(meta, now);
  for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
    const id = engine.idOf(state);
    const key = engine.keyOf(id);
    // Encrypted records are bound to their key: encoded per id drawn.
    const record = encode(engine, meta, dataText, data, state.secure, key);
    await indexOwner(engine, id, owner, meta);
    if (await call("create", key, () => store.create(key, record, ttl))) {
      markStored(state, meta, { text: dataText, record, version: undefined });
      state.sendCookie = true;
      state.clearCookie = false;
      state.forceSave = false;
      events.emit("created", { session: engine.hash(id) });
      return true;
    }
    // Evicted by a newer login of its owner before its record landed (maxSessionsPerOwner): it lost.
    if (engine.config.limit?.onLimit === "evict-least-active" && (await call("get", key, () => store.get(key))) === EVICTED_RECORD) {
      engine.continueWithoutRecord(state);
      return false;
    }
    events.log("warn", "session.id-collision", "a new id already existed in the store; drawing another", id);
    state.id = null;
  }
  throw new SessionError("ERR_SESSION_ID_COLLISION", `${CREATE_ATTEMPTS} new ids in a row already existed in ${store.name}; is genid random?`);
}

/**
 * Run a compare-and-set write after any other of the same session in this process, handing it the
 * record the last one wrote. Parallel requests of one user would otherwise all conflict with each
 * other, each conflict costing a round trip and a whole record of traffic (#16 item 6). The entry
 * lives only while writes of that session are in flight.
 */
function afterOtherWrites(engine: Engine, id: string, state: State, run: (latest: WriteQueue["latest"]) => Promise<boolean>): Promise<boolean> {
  const writes = engine.writes;
  let queue = writes.get(id);
  if (queue === undefined) writes.set(id, (queue = { tail: Promise.resolve(), latest: null }));
  const q = queue;
  const result = q.tail.then(() => run(q.latest));
  const tail = result.then(
    () => {
      q.latest = state.stored;
    },
    () => undefined,
  );
  q.tail = tail;
  void tail.then(() => {
    if (q.tail === tail && writes.get(id) === q) writes.delete(id);
  });
  return result;
}

/** A record about to be written: its data text, the whole record, its metadata. */
interface Pending {
  readonly text: string;
  readonly record: string;
  readonly meta: RecordMeta;
}

/**
 * Compare-and-set against the record this request loaded (or the one a write of this process made
 * since, `latest`). On conflict another request wrote in between: re-apply the top-level keys this
 * request changed onto the current record (merge.ts) and retry, after a random pause that grows with
 * each conflict (full jitter), so that writers in several processes stop colliding.
 */
async function compareAndSet(session: Data, state: State, key: string, pending: Pending, latest: WriteQueue["latest"]): Promise<boolean> {
  const engine = state.engine;
  const { store, config } = engine;
  const id = state.id!;
  const loaded = state.stored!;
  const cas = store.compareAndSet!.bind(store);
  let { text, record, meta } = pending;
  let expected = loaded.record;
  // The store's version of `expected`, when it keeps them: lets it write without reading first.
  let version = loaded.version;
  let changes: Map<string, unknown> | null = null;
  // A write of this process landed after this request loaded: merge onto it without asking the store.
  let conflict: WriteQueue["latest"] = latest !== null && latest.record !== expected ? latest : null;
  let conflicts = 0;
  let attempt = 0;
  for (; attempt < MERGE_ATTEMPTS; attempt++) {
    if (conflict !== null) {
      const current = config.codec.decode(conflict.record, Date.now(), key);
      if (!current) break;
      changes ??= changesBetween(config.serializer, parseData(config.serializer, loaded.text) ?? {}, { ...session }, RESERVED);
      const merged = applyChanges(current.data, changes);
      expected = conflict.record;
      version = conflict.version;
      text = config.serializer.stringify(merged);
      const owner = ownerOf(engine, merged);
      if (owner !== meta.owner && owner !== current.meta.owner) await indexOwner(engine, id, owner, current.meta);
      meta = metaFor(current.meta, Date.now(), owner);
      if (state.lifetimeChanged) {
        if (state.meta.lifetime === undefined) delete meta.lifetime;
        else meta.lifetime = state.meta.lifetime;
      }
      record = encode(engine, meta, text, merged, state.secure, key);
      clearData(session);
      assignData(engine, session, merged, id);
      if (text === current.dataText && (!state.lifetimeChanged || current.meta.lifetime === meta.lifetime)) {
        markStored(state, current.meta, { text, record: conflict.record, version: conflict.version });
        return false;
      }
      if (conflicts > 0) await pause(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** conflicts));
    }
    const ttl = engine.ttl(meta, Date.now());
    const result = await engine.call("compareAndSet", key, () => (version === undefined ? cas(key, expected, record, ttl) : cas(key, expected, record, ttl, version)));
    if (result.status === "written") {
      markStored(state, meta, { text, record, version: result.version });
      return true;
    }
    if (result.status === "missing") break;
    conflict = { record: result.current, version: result.version };
    conflicts++;
    if (state.commitTrace !== undefined) state.commitTrace.conflicts++;
  }
  if (attempt === MERGE_ATTEMPTS) {
    // Contention this heavy is not a missing session: fail retryably rather than drop the changes.
    throw new StoreUnavailableError(store.name, "compareAndSet", {
      cause: new SessionError("ERR_SESSION_CONTENTION", `gave up after ${MERGE_ATTEMPTS} conflicting concurrent writes to one session`),
      retryAfter: config.retryAfter,
    });
  }
  clearData(session);
  engine.continueWithoutRecord(state);
  return false;
}
