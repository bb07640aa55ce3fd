/**
 * Differential tests of the Koa binding (Koa 3, or the Koa that `SHARED_SESSION_KOA_MODULE` names,
 * 2.x in CI): generated handler programs answer in every Koa idiom, on bare Koa with a stand-in
 * session and with `koaSession()` on Redis.
 */
import { createServer } from "node:http";
import { Readable } from "node:stream";
import type { Context } from "koa";
import { koaSession } from "../../../src/frameworks/koa.js";
import { koaModule, listen } from "../../helpers/framework-apps.js";
import type { FrameworkUnderTest, Registry } from "./harness.js";
import { dataOf, immediate, runOps, runOpsNow, SEED, type AnySession } from "./programs.js";

export const KOA_ANSWERS = ["string", "buffer", "stream", "json", "redirect", "status204", "nothing", "bodyTwice", "throwHttp", "throwError", "respondFalse"] as const;
export type KoaAnswer = (typeof KOA_ANSWERS)[number];

function answer(kind: KoaAnswer, ctx: Context): void {
  switch (kind) {
    case "string":
      ctx.body = "a string";
      return;
    case "buffer":
      ctx.body = Buffer.from("a buffer");
      return;
    case "stream":
      ctx.type = "text/plain";
      ctx.body = Readable.from(["a ", "stream"]);
      return;
    case "json":
      ctx.body = { ok: true };
      return;
    case "redirect":
      ctx.redirect("/elsewhere");
      return;
    case "status204":
      ctx.status = 204;
      return;
    case "nothing":
      return;
    case "bodyTwice":
      ctx.body = "first";
      ctx.body = "second";
      return;
    case "throwHttp":
      ctx.throw(409, "conflict");
      return;
    case "throwError":
      throw new Error("thrown");
    case "respondFalse":
      ctx.respond = false;
      ctx.res.setHeader("content-type", "text/plain");
      ctx.res.end("written by the app");
      return;
  }
}

export const koaUnderTest: FrameworkUnderTest<KoaAnswer> = {
  name: "koa",
  answers: KOA_ANSWERS,
  // The app wrote the response itself: the binding commits after it (documented).
  unstored: ["respondFalse"],
  async start(session, registry: Registry<KoaAnswer>) {
    const app = new koaModule();
    app.silent = true;
    const recording = "standIn" in session;
    if ("real" in session) app.use(koaSession(session.real));
    else {
      const make = session.standIn;
      app.use(async (ctx, next) => {
        (ctx as unknown as { session: AnySession }).session = make(ctx.get("x-prior") || undefined);
        await next();
      });
    }
    app.use(async (ctx) => {
      // The request's session, read anew after each step: regenerate() replaces it on Express and Koa.
      const own = (): AnySession => ctx.session as unknown as AnySession;
      if (ctx.path === "/__seed") {
        Object.assign(own(), SEED);
        ctx.body = { ok: true };
        return;
      }
      if (ctx.path === "/__dump") {
        ctx.body = dataOf(own());
        return;
      }
      const id = ctx.path.slice("/p/".length);
      const program = registry.program(id);
      if (program.late) await new Promise((resolve) => setImmediate(resolve));
      const reads = !program.late && immediate(program.ops) ? runOpsNow(own, program.ops) : await runOps(own, program.ops);
      if (recording) registry.record(id, dataOf(own()));
      ctx.set("x-reads", reads);
      answer(program.answer, ctx);
    });
    return listen(createServer(app.callback()));
  },
};

