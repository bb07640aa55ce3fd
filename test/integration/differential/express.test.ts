/**
 * Differential tests of the Express binding (Express 5, or the Express that
 * `SHARED_SESSION_EXPRESS_MODULE` names, 4.x in CI): generated handler programs answer in every
 * Express idiom, on bare Express with a stand-in session and with `expressSession()` on Redis.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { EXPRESS_ANSWERS, expressUnderTest, type ExpressAnswer } from "./express-app.js";
import { createHarness, RUNS, variants, type Harness } from "./harness.js";
import { programs } from "./programs.js";

describe("Express: the binding answers as bare Express does", () => {
  let harness: Harness<ExpressAnswer>;
  beforeAll(async () => {
    harness = await createHarness(expressUnderTest);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it(`${RUNS} generated programs`, async () => {
    await fc.assert(
      fc.asyncProperty(programs(EXPRESS_ANSWERS), variants, (program, variant) => harness.run(program, variant)),
      { numRuns: RUNS, verbose: 1 },
    );
  }, 300_000);
});
