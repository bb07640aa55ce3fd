/**
 * Handler programs for the differential tests: a list of session operations, then one way of
 * answering in a framework's idiom, then what the client does. The same program runs on the bare
 * framework with a do-nothing in-memory stand-in session and on the real binding; the results
 * must match.
 */
import fc from "fast-check";
import { createSessionManager } from "../../../src/index.js";
import { MemoryStore } from "../../../src/testing/index.js";

export type Key = "a" | "b" | "c";
/** awaited as a promise · through its node-style callback, waited for · called and not awaited · callback given, not waited for. */
export type Mode = "await" | "callback" | "fire" | "fire-callback";

export type SessionOp =
  | { op: "read"; key: Key }
  | { op: "set"; key: Key; value: number }
  | { op: "delete"; key: Key }
  | { op: "regenerate" | "destroy" | "reload" | "touch" | "save"; mode: Mode };

export type Client = "normal" | "head" | "abort";

export interface Program<A extends string = string> {
  /** The request carries the cookie of an existing session holding {@link SEED}. */
  prior: boolean;
  ops: SessionOp[];
  answer: A;
  /**
   * The handler waits a turn of the event loop before its operations. When it does not and no
   * operation needs waiting, the handler runs and answers synchronously (a plain, non-async handler).
   */
  late: boolean;
  client: Client;
}

export const SEED: Readonly<Record<string, number>> = { a: 1 };

const key = fc.constantFrom<Key>("a", "b", "c");
const waited = fc.constantFrom<Mode>("await", "callback");

/**
 * Session operations. Methods that change data in place (regenerate, destroy, reload) are waited
 * for; `save` and `touch` also run un-awaited, as the last operations, as apps write them
 * (`ctx.session.save(); ctx.body = …`).
 */
export const sessionOps: fc.Arbitrary<SessionOp[]> = fc
  .tuple(
    fc.array(
      fc.oneof(
        { weight: 3, arbitrary: fc.record({ op: fc.constant("read" as const), key }) },
        { weight: 5, arbitrary: fc.record({ op: fc.constant("set" as const), key, value: fc.integer({ min: 0, max: 9 }) }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("regenerate" as const, "destroy" as const, "reload" as const, "touch" as const, "save" as const), mode: waited }) },
      ),
      { maxLength: 5 },
    ),
    fc.array(fc.record({ op: fc.constantFrom("save" as const, "touch" as const), mode: fc.constantFrom<Mode>("fire", "fire-callback") }), { maxLength: 1 }),
  )
  .map(([body, tail]) => [...body, ...tail]);

export function programs<A extends string>(answers: readonly A[], clients: readonly Client[] = ["normal", "normal", "head", "abort"]): fc.Arbitrary<Program<A>> {
  return fc.record({
    prior: fc.boolean(),
    ops: sessionOps,
    answer: fc.constantFrom(...answers),
    late: fc.boolean(),
    client: fc.constantFrom(...clients),
  });
}

/** The session API both sessions offer, as the programs use it. */
export interface AnySession {
  [key: string]: unknown;
  regenerate(cb?: (err?: unknown) => void): Promise<void>;
  destroy(cb?: (err?: unknown) => void): Promise<void>;
  save(cb?: (err?: unknown) => void): Promise<void>;
  reload(cb?: (err?: unknown) => void): Promise<void>;
  touch(cb?: (err?: unknown) => void): Promise<void>;
}

/**
 * Run the session operations; returns what the reads saw. A rejected waited operation rejects
 * (the handler then throws, as an app would). Each step reads the request's session anew
 * (`current()`): on Express and Koa `regenerate()` puts a new object there, as express-session does.
 */
export async function runOps(current: () => AnySession, ops: readonly SessionOp[]): Promise<string> {
  const reads: unknown[] = [];
  for (const step of ops) {
    const session = current();
    switch (step.op) {
      case "read":
        reads.push(session[step.key] ?? null);
        break;
      case "set":
        session[step.key] = step.value;
        break;
      case "delete":
        delete session[step.key];
        break;
      default: {
        const method = step.op;
        if (step.mode === "await") await session[method]();
        else if (step.mode === "callback") {
          await new Promise<void>((resolve, reject) => {
            void session[method]((err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
          });
        } else if (step.mode === "fire") void session[method]().catch(() => undefined);
        else void session[method](() => undefined);
      }
    }
  }
  return JSON.stringify(reads);
}

/** The operations need no waiting: a handler can run them and answer in the same call. */
export function immediate(ops: readonly SessionOp[]): boolean {
  return ops.every((step) => !("mode" in step) || step.mode === "fire" || step.mode === "fire-callback");
}

/** {@link runOps} for {@link immediate} operations, in the caller's own turn. */
export function runOpsNow(current: () => AnySession, ops: readonly SessionOp[]): string {
  const reads: unknown[] = [];
  for (const step of ops) {
    const session = current();
    if (step.op === "read") reads.push(session[step.key] ?? null);
    else if (step.op === "set") session[step.key] = step.value;
    else if (step.op === "delete") delete session[step.key];
    else if (step.mode === "fire") void session[step.op]().catch(() => undefined);
    else void session[step.op](() => undefined);
  }
  return JSON.stringify(reads);
}

/** The session's data, as plain JSON. */
export function dataOf(session: object): Record<string, unknown> {
  return JSON.parse(JSON.stringify({ ...session })) as Record<string, unknown>;
}

/** Whether the binding's `regenerate()` keeps the data (asked once of the core, so the stand-in mirrors it either way). */
export async function regenerateKeepsData(): Promise<boolean> {
  const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret: "probe-secret-probe-secret-probe-secret!" });
  const session = (await manager.load(undefined, { secure: false })) as unknown as AnySession;
  session.a = 1;
  await session.regenerate();
  return session.a === 1;
}

/**
 * The do-nothing stand-in: the same session API, in memory, nothing stored. `reload()` goes back
 * to what was last "saved" (the loaded data, or a `save()`); after `regenerate()` or `destroy()`
 * there is nothing saved to go back to, as in the binding.
 */
export function standInSession(initial: Record<string, unknown> | undefined, keepOnRegenerate: boolean): AnySession {
  let saved: Record<string, unknown> | undefined = initial === undefined ? undefined : { ...initial };
  const session = Object.create(null) as AnySession;
  const clear = (): void => {
    for (const k of Object.keys(session)) delete session[k];
  };
  const done = (cb: ((err?: unknown) => void) | undefined): Promise<void> => {
    const promise = new Promise<void>((resolve) => setImmediate(resolve));
    return cb === undefined ? promise : promise.then(() => cb());
  };
  const methods = {
    regenerate(cb?: (err?: unknown) => void) {
      if (!keepOnRegenerate) clear();
      saved = undefined;
      return done(cb);
    },
    destroy(cb?: (err?: unknown) => void) {
      clear();
      saved = undefined;
      return done(cb);
    },
    save(cb?: (err?: unknown) => void) {
      saved = { ...session };
      return done(cb);
    },
    reload(cb?: (err?: unknown) => void) {
      if (saved !== undefined) {
        clear();
        Object.assign(session, saved);
      }
      return done(cb);
    },
    touch(cb?: (err?: unknown) => void) {
      return done(cb);
    },
  };
  for (const [name, fn] of Object.entries(methods)) Object.defineProperty(session, name, { value: fn, enumerable: false });
  if (initial !== undefined) Object.assign(session, initial);
  return session;
}
