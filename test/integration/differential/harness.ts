/**
 * The differential runner: one program on the bare framework with the stand-in session, and on
 * the real binding over a real Redis (as is, slowed down, or failing), then a follow-up request on
 * a second instance of the app. What must hold:
 * - the process never sees an unhandled rejection, an uncaught exception or an `error` event
 *   without a listener;
 * - status, body, completeness and every header but `Set-Cookie` (and `Date`) equal the stand-in's
 *   (the documented difference: a failing store may turn the answer into a 503);
 * - the data the stand-in ends with is in the store when the response head reaches the client
 *   (the follow-up starts at that moment, on another instance);
 * - nothing hangs: every response ends, or its connection closes, within the wait.
 */
import type http from "node:http";
import fc from "fast-check";
import type { SessionOptions } from "../../../src/index.js";
import type { RunningApp } from "../../helpers/framework-apps.js";
import type { InstrumentedStore } from "../../helpers/instrumented-store.js";
import { cookieOf, pause, redisArea, send, watchProcess, type Received, type RedisArea } from "../../helpers/answers.js";
import { regenerateKeepsData, SEED, standInSession, type AnySession, type Program } from "./programs.js";

export const SECRET = "differential-harness-secret-of-32-chars!";

/** Where a program is looked up and its stand-in's final data recorded, by the id in the path. */
export interface Registry<A extends string> {
  program(id: string): Program<A>;
  /** The stand-in app records its session's data when the program answers. */
  record(id: string, data: Record<string, unknown>): void;
}

/** How the stand-in app gives a request its session: the seed when the request says it has a prior session. */
export type StandInFactory = (priorHeader: string | undefined) => AnySession;

export interface FrameworkUnderTest<A extends string> {
  readonly name: string;
  readonly answers: readonly A[];
  /**
   * Start an app serving `GET /p/:id` (runs program `id`), `GET /__seed` (sets {@link SEED}) and
   * `GET /__dump` (the session's data as JSON); with `standIn`, the bare framework and that
   * session instead of the binding.
   */
  start(session: { real: SessionOptions } | { standIn: StandInFactory }, registry: Registry<A>): Promise<RunningApp>;
  /** Answers after which the store is not written before the response (documented), so the data is not checked. */
  readonly unstored?: readonly A[];
}

export type StoreVariant = "redis" | "slow" | "failing";

export interface Harness<A extends string> {
  run(program: Program<A>, variant: StoreVariant): Promise<void>;
  close(): Promise<void>;
}

/** Headers whose values differ between two correct runs. */
const IGNORED_HEADERS = new Set(["set-cookie", "date"]);

function comparable(response: Received): unknown {
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (!IGNORED_HEADERS.has(name)) headers[name] = value;
  }
  return { status: response.status, body: response.body, complete: response.complete, noResponse: response.noResponse, headers };
}

export async function createHarness<A extends string>(framework: FrameworkUnderTest<A>): Promise<Harness<A>> {
  const keep = await regenerateKeepsData();
  const area: RedisArea = await redisArea(`differential-${framework.name}`);
  const programsById = new Map<string, Program<A>>();
  const expected = new Map<string, Record<string, unknown>>();
  const registry: Registry<A> = {
    program(id) {
      const program = programsById.get(id);
      if (program === undefined) throw new Error(`no program ${id}`);
      return program;
    },
    record(id, data) {
      expected.set(id, data);
    },
  };
  const standIn = await framework.start({ standIn: (prior) => standInSession(prior === "1" ? { ...SEED } : undefined, keep) }, registry);
  const store: InstrumentedStore = area.openStore();
  const real = await framework.start({ real: { store, secret: SECRET, storeTimeout: 2 } }, registry);
  const other = await framework.start({ real: { store: area.openStore(), secret: SECRET } }, registry);
  const watch = watchProcess();
  let counter = 0;

  async function seed(): Promise<string> {
    const response = await send(`${other.url}/__seed`);
    const cookie = cookieOf(response.headers);
    if (response.status !== 200 || cookie === undefined) throw new Error(`seeding failed: ${response.status} ${response.body}`);
    return cookie;
  }

  return {
    async run(program, variant) {
      counter += 1;
      const id = String(counter);
      programsById.set(id, program);
      const path = `/p/${id}`;
      const method = program.client === "head" ? "HEAD" : "GET";
      const abortAfterHead = program.client === "abort";
      const cookie = program.prior ? await seed() : undefined;

      const bare = await send(`${standIn.url}${path}`, { method, abortAfterHead, headers: program.prior ? { "x-prior": "1" } : {} });

      store.reset();
      if (variant === "slow") store.writeDelayMs = 25;
      if (variant === "failing") {
        for (const op of ["create", "update", "compareAndSet", "destroy", "touch"] as const) store.faults.set(op, "throw");
      }
      let followUp: Promise<Received> | undefined;
      const dumpAt = (headers: http.IncomingHttpHeaders): void => {
        const next = cookieOf(headers) ?? (clearsCookie(headers) ? undefined : cookie);
        followUp = send(`${other.url}/__dump`, next === undefined ? {} : { cookie: next });
      };
      const ours = await send(`${real.url}${path}`, { method, abortAfterHead, cookie, onHead: dumpAt });
      const seen = followUp === undefined ? undefined : await followUp;
      await pause(15);
      store.reset();

      const context = `${framework.name} on ${variant}: ${JSON.stringify(program)}`;
      if (watch.errors.length > 0) {
        const errors = watch.errors.splice(0).map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e)));
        throw new Error(`${context}\nerrors nobody handled:\n${errors.join("\n")}`);
      }
      if (!ours.noResponse && !ours.complete && !abortAfterHead && bare.complete) {
        throw new Error(`${context}\nthe response did not end: ${JSON.stringify(ours)}`);
      }
      if (abortAfterHead) {
        const alive = await send(`${real.url}/__dump`);
        if (alive.status !== 200) throw new Error(`${context}\nthe app stopped answering after an abort: ${alive.status}`);
        return;
      }
      const want = comparable(bare);
      const got = comparable(ours);
      const failed = variant === "failing" && ours.status === 503;
      if (!failed && fc.stringify(got) !== fc.stringify(want)) {
        throw new Error(`${context}\nanswer differs from the bare framework's\n  bare: ${JSON.stringify(want)}\n  ours: ${JSON.stringify(got)}`);
      }
      if (variant === "failing" || framework.unstored?.includes(program.answer) === true) return;
      const data = expected.get(id);
      if (data === undefined) return; // the program never reached its answer (it threw first)
      const stored = seen === undefined ? undefined : (JSON.parse(seen.body || "null") as unknown);
      if (fc.stringify(stored) !== fc.stringify(data)) {
        throw new Error(`${context}\nat the first byte the store held ${JSON.stringify(stored)}, the session ended with ${JSON.stringify(data)}`);
      }
    },
    async close() {
      watch.stop();
      await Promise.all([standIn.close(), real.close(), other.close()]);
      await area.close();
    },
  };
}

function clearsCookie(headers: http.IncomingHttpHeaders): boolean {
  return (headers["set-cookie"] ?? []).some((h) => /^sid=;/.test(h));
}

/** How many programs each framework runs: `SHARED_SESSION_DIFFERENTIAL_RUNS` overrides. */
export const RUNS = Number(process.env.SHARED_SESSION_DIFFERENTIAL_RUNS ?? 300);

/** Arbitrary store variant, mostly the real Redis as is. */
export const variants: fc.Arbitrary<StoreVariant> = fc.constantFrom<StoreVariant>("redis", "redis", "slow", "failing");
