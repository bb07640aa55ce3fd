/**
 * Differential tests of the Fastify 5 binding: generated handler programs answer in every Fastify
 * idiom (a return value, reply.send with and without `return reply`, redirects, streams, answering
 * twice, throwing after sending, hijacking), on bare Fastify with a stand-in session and with the
 * `fastifySession` plugin on Redis.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { FASTIFY_ANSWERS, fastifyUnderTest, type FastifyAnswer } from "./fastify-app.js";
import { createHarness, RUNS, variants, type Harness } from "./harness.js";
import { programs } from "./programs.js";

describe("Fastify: the binding answers as bare Fastify does", () => {
  let harness: Harness<FastifyAnswer>;
  beforeAll(async () => {
    harness = await createHarness(fastifyUnderTest);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it(`${RUNS} generated programs`, async () => {
    await fc.assert(
      fc.asyncProperty(programs(FASTIFY_ANSWERS), variants, (program, variant) => harness.run(program, variant)),
      { numRuns: RUNS },
    );
  }, 300_000);
});
