/**
 * Differential tests of the Koa binding (Koa 3, or the Koa that `SHARED_SESSION_KOA_MODULE` names,
 * 2.x in CI): generated handler programs answer in every Koa idiom, on bare Koa with a stand-in
 * session and with `koaSession()` on Redis.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { KOA_ANSWERS, koaUnderTest, type KoaAnswer } from "./koa-app.js";
import { createHarness, RUNS, variants, type Harness } from "./harness.js";
import { programs } from "./programs.js";

describe("Koa: the binding answers as bare Koa does", () => {
  let harness: Harness<KoaAnswer>;
  beforeAll(async () => {
    harness = await createHarness(koaUnderTest);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it(`${RUNS} generated programs`, async () => {
    await fc.assert(
      fc.asyncProperty(programs(KOA_ANSWERS), variants, (program, variant) => harness.run(program, variant)),
      { numRuns: RUNS },
    );
  }, 300_000);
});
