/**
 * Differential tests of the Express binding (Express 5, or the Express that
 * `SHARED_SESSION_EXPRESS_MODULE` names, 4.x in CI): generated handler programs answer in every
 * Express idiom, on bare Express with a stand-in session and with `expressSession()` on Redis.
 */
import { createServer } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { expressSession } from "../../../src/frameworks/express/index.js";
import { expressModule, listen } from "../../helpers/framework-apps.js";
import type { FrameworkUnderTest, Registry } from "./harness.js";
import { dataOf, immediate, runOps, runOpsNow, SEED, type AnySession } from "./programs.js";

export const EXPRESS_ANSWERS = [
  "send",
  "json",
  "redirect",
  "end",
  "writeEnd",
  "pipe",
  "sendFile",
  "sendStatus",
  "next",
  "nextError",
  "throw",
  "sendTwice",
  "sendThenThrow",
  "jsonThenNext",
  "endThenNextError",
] as const;
export type ExpressAnswer = (typeof EXPRESS_ANSWERS)[number];

const fileDir = mkdtempSync(join(tmpdir(), "shared-session-differential-"));
const FILE = join(fileDir, "file.txt");
writeFileSync(FILE, "a file's content\n");

function answer(kind: ExpressAnswer, req: Request, res: Response, next: NextFunction): void {
  switch (kind) {
    case "send":
      res.send("sent");
      return;
    case "json":
      res.json({ ok: true });
      return;
    case "redirect":
      res.redirect(303, "/elsewhere");
      return;
    case "end":
      res.end("ended");
      return;
    case "writeEnd":
      res.write("part one, ");
      res.end("part two");
      return;
    case "pipe":
      Readable.from(["piped ", "in ", "three"]).pipe(res);
      return;
    case "sendFile":
      res.sendFile(FILE, (err) => {
        if (err) next(err);
      });
      return;
    case "sendStatus":
      res.sendStatus(204);
      return;
    case "next":
      next();
      return;
    case "nextError":
      next(Object.assign(new Error("handed on"), { status: 418 }));
      return;
    case "throw":
      throw new Error("thrown");
    case "sendTwice":
      res.send("first");
      res.send("second");
      return;
    case "sendThenThrow":
      res.send("sent, then");
      throw new Error("thrown after the answer");
    case "jsonThenNext":
      res.json({ then: "next" });
      next();
      return;
    case "endThenNextError":
      res.end("ended, then");
      next(new Error("handed on after the answer"));
      return;
  }
  void req;
}

export const expressUnderTest: FrameworkUnderTest<ExpressAnswer> = {
  name: "express",
  answers: EXPRESS_ANSWERS,
  async start(session, registry: Registry<ExpressAnswer>) {
    const app = expressModule();
    const recording = "standIn" in session;
    // Express's final handler quiet (it logs outside "test"); error pages below, without stacks.
    app.set("env", "test");
    if ("real" in session) app.use(expressSession(session.real));
    else {
      const make = session.standIn;
      const standIn: RequestHandler = (req, _res, next) => {
        (req as unknown as { session: AnySession }).session = make(req.get("x-prior"));
        next();
      };
      app.use(standIn);
    }
    app.get("/__seed", (req, res) => {
      Object.assign(req.session, SEED);
      res.json({ ok: true });
    });
    app.get("/__dump", (req, res) => {
      res.json(dataOf(req.session));
    });
    app.get("/p/:id", (req, res, next) => {
      const id = String(req.params.id);
      const program = registry.program(id);
      // The request's session, read anew after each step: regenerate() replaces it on Express and Koa.
      const own = (): AnySession => req.session as unknown as AnySession;
      if (!program.late && immediate(program.ops)) {
        // A plain synchronous handler: what it throws, Express catches itself.
        const reads = runOpsNow(own, program.ops);
        if (recording) registry.record(id, dataOf(own()));
        res.set("x-reads", reads);
        answer(program.answer, req, res, next);
        return;
      }
      const run = async (): Promise<void> => {
        if (program.late) await new Promise((resolve) => setImmediate(resolve));
        const reads = await runOps(own, program.ops);
        if (recording) registry.record(id, dataOf(own()));
        res.set("x-reads", reads);
        answer(program.answer, req, res, next);
      };
      // Express 4 ignores a handler's promise: hand a rejection to next, as Express 5 does.
      run().catch(next);
    });
    // The usual app error handler: an answer already started goes on to Express's final handler.
    app.use((err: { status?: number; message?: string }, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) {
        next(err);
        return;
      }
      res.status(err.status ?? 500).send(`error: ${err.message ?? ""}`);
    });
    return listen(createServer(app));
  },
};

