/**
 * Counterexamples the differential harness found (shrunk), kept as plain tests: each runs one
 * program through the same harness as the generated ones.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { expressUnderTest, type ExpressAnswer } from "./express-app.js";
import { fastifyUnderTest, type FastifyAnswer } from "./fastify-app.js";
import { createHarness, type Harness, type StoreVariant } from "./harness.js";
import { koaUnderTest, type KoaAnswer } from "./koa-app.js";
import type { Program } from "./programs.js";

type Case<A extends string> = [string, Program<A>, StoreVariant];

const EXPRESS: Case<ExpressAnswer>[] = [
  // Crashed the process (write after end, no listener) before issue 15.
  ["set, res.send(), throw", { prior: false, ops: [{ op: "set", key: "a", value: 0 }], answer: "sendThenThrow", late: false, client: "normal" }, "redis"],
  // Crashed the process before issue 15 (the replayed second end: write after end, no listener).
  ["set, res.send() twice", { prior: false, ops: [{ op: "set", key: "a", value: 0 }], answer: "sendTwice", late: false, client: "normal" }, "redis"],
  // Answered 404 over the held answer when the store failed.
  ["set, res.json(), next(), failing store", { prior: false, ops: [{ op: "set", key: "a", value: 0 }], answer: "jsonThenNext", late: false, client: "normal" }, "failing"],
];

const KOA: Case<KoaAnswer>[] = [
  // The cookie of the written session was dropped by Koa's error answer.
  ["set, throw", { prior: false, ops: [{ op: "set", key: "a", value: 0 }], answer: "throwError", late: false, client: "normal" }, "redis"],
];

const FASTIFY: Case<FastifyAnswer>[] = [
  // Killed the process before issue 15 (ERR_HTTP_HEADERS_SENT as an unhandled rejection).
  ["set, reply.send(), throw", { prior: false, ops: [{ op: "set", key: "a", value: 0 }], answer: "sendThenThrow", late: false, client: "normal" }, "redis"],
  // The app's 500 became the store's error.
  ["regenerate, throw, failing store", { prior: false, ops: [{ op: "regenerate", mode: "await" }], answer: "throw", late: false, client: "normal" }, "failing"],
  // An un-awaited save, then a stream: the body went missing.
  ["save() not awaited, stream", { prior: true, ops: [{ op: "save", mode: "fire" }], answer: "stream", late: false, client: "normal" }, "redis"],
];

function suite<A extends string>(name: string, framework: Parameters<typeof createHarness<A>>[0], cases: Case<A>[]): void {
  describe(`${name}: counterexamples`, () => {
    let harness: Harness<A>;
    beforeAll(async () => {
      harness = await createHarness(framework);
    });
    afterAll(async () => {
      await harness?.close();
    });
    it.each(cases)("%s", async (_title, program, variant) => {
      await harness.run(program, variant);
    });
  });
}

suite("Express", expressUnderTest, EXPRESS);
suite("Koa", koaUnderTest, KOA);
suite("Fastify", fastifyUnderTest, FASTIFY);
