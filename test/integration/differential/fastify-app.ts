/**
 * Differential tests of the Fastify 5 binding: generated handler programs answer in every Fastify
 * idiom (a return value, reply.send with and without `return reply`, redirects, streams, answering
 * twice, throwing after sending, hijacking), on bare Fastify with a stand-in session and with the
 * `fastifySession` plugin on Redis.
 */
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import { fastifySession } from "../../../src/frameworks/fastify.js";
import type { Session } from "../../../src/index.js";
import type { FrameworkUnderTest, Registry } from "./harness.js";
import { dataOf, immediate, runOps, runOpsNow, SEED, type AnySession } from "./programs.js";

export const FASTIFY_ANSWERS = [
  "returnValue",
  "returnJson",
  "returnSend",
  "sendNoReturn",
  "redirect",
  "redirectNoReturn",
  "stream",
  "sendTwice",
  "sendThenThrow",
  "throw",
  "hijack",
] as const;
export type FastifyAnswer = (typeof FASTIFY_ANSWERS)[number];

function answer(kind: FastifyAnswer, reply: FastifyReply): unknown {
  switch (kind) {
    case "returnValue":
      return "a value";
    case "returnJson":
      return { ok: true };
    case "returnSend":
      return reply.send("sent");
    case "sendNoReturn":
      void reply.send("sent, not returned");
      return undefined;
    case "redirect":
      return reply.redirect("/elsewhere", 303);
    case "redirectNoReturn":
      void reply.redirect("/elsewhere");
      return undefined;
    case "stream":
      return reply.type("text/plain").send(Readable.from(["a ", "stream"]));
    case "sendTwice":
      void reply.send("first");
      void reply.send("second");
      return reply;
    case "sendThenThrow":
      void reply.send("sent, then");
      throw new Error("thrown after the answer");
    case "throw":
      throw new Error("thrown");
    case "hijack":
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/plain" });
      reply.raw.end("hijacked");
      return undefined;
  }
}

export const fastifyUnderTest: FrameworkUnderTest<FastifyAnswer> = {
  name: "fastify",
  answers: FASTIFY_ANSWERS,
  // The app took the response over: Fastify's onSend never runs, nothing is committed (documented).
  unstored: ["hijack"],
  async start(session, registry: Registry<FastifyAnswer>) {
    const app = Fastify();
    const recording = "standIn" in session;
    if ("real" in session) await app.register(fastifySession, session.real);
    else {
      const make = session.standIn;
      app.decorateRequest("session", null as unknown as Session);
      app.addHook("onRequest", async (request: FastifyRequest) => {
        const prior = request.headers["x-prior"];
        request.session = make(typeof prior === "string" ? prior : undefined) as unknown as Session;
      });
    }
    app.get("/__seed", async (request) => {
      Object.assign(request.session, SEED);
      return { ok: true };
    });
    app.get("/__dump", async (request) => dataOf(request.session));
    app.get("/p/:id", (request, reply) => {
      const id = (request.params as { id: string }).id;
      const program = registry.program(id);
      // The request's session, read anew after each step: regenerate() replaces it on Express and Koa.
      const own = (): AnySession => request.session as unknown as AnySession;
      if (!program.late && immediate(program.ops)) {
        // A plain synchronous handler: its return value, its reply.send() or its throw.
        const reads = runOpsNow(own, program.ops);
        if (recording) registry.record(id, dataOf(own()));
        void reply.header("x-reads", reads);
        return answer(program.answer, reply);
      }
      const run = async (): Promise<unknown> => {
        if (program.late) await new Promise((resolve) => setImmediate(resolve));
        const reads = await runOps(own, program.ops);
        if (recording) registry.record(id, dataOf(own()));
        void reply.header("x-reads", reads);
        return answer(program.answer, reply);
      };
      return run();
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
};

