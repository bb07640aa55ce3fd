/** What one call of the app to a method that sends does, in each state of the response's hold. */
import type { ServerResponse } from "node:http";
import { appendSetCookie, commitAll } from "./commit.js";
import { pass, type Args, type Hold, type Kind } from "./hold.js";
import { checkCall, headersSentError, isHeadHeld, markEnded, markHeadSent, takeHead } from "./node-response.js";
import { abort, fail, release } from "./release.js";
import { deferSocketDestroy } from "./socket.js";

/** One call of the app to a method that sends. */
export function intercept(hold: Hold, kind: Kind, args: Args): unknown {
  switch (hold.state) {
    case "passing":
      // The head is out (the app streamed); write what changed since, then end.
      if (kind === "end" && !hold.res.writableEnded) return endAfterHead(hold, args);
      return pass(hold, kind, args);
    case "errorRouted":
      return pass(hold, kind, args);
    case "discarding":
      return discarded(hold.res, kind, args);
    case "holding":
      checkCall(hold.res, kind, args);
      return queue(hold, kind, args);
    case "unsent":
      return begin(hold, kind, args);
  }
}

/** The first call that would send: commit now when nothing needs the store, or hold. */
function begin(hold: Hold, kind: Kind, args: Args): unknown {
  const { res } = hold;
  checkCall(res, kind, args);
  const committed = commitAll(hold);
  if (committed instanceof Promise) {
    hold.state = "holding";
    const result = queue(hold, kind, args);
    // From the app's side the head is out now, as it would be without us.
    markHeadSent(res);
    deferSocketDestroy(hold);
    committed.then(
      ({ setCookie, setHeader }) => release(hold, setCookie, setHeader),
      (err: unknown) => fail(hold, err),
    ).catch((err: unknown) => abort(hold, err));
    return result;
  }
  hold.state = "passing";
  if (committed.setHeader !== undefined && !res.headersSent) res.setHeader(...committed.setHeader);
  const cookie = committed.setCookie;
  if (cookie === undefined || res.headersSent) return pass(hold, kind, args);
  const head = kind === "writeHead" ? takeHead(res, args) : args;
  appendSetCookie(res, cookie);
  return pass(hold, kind, head);
}

/** Queue a call while the commit runs; answer as the method would. */
function queue(hold: Hold, kind: Kind, args: Args): unknown {
  if (kind === "writeHead" && isHeadHeld(hold.res)) throw headersSentError();
  hold.queue.push({ kind, args: kind === "writeHead" ? takeHead(hold.res, args) : args });
  if (kind === "end" && !hold.endHeld) {
    hold.endHeld = true;
    markEnded(hold.res);
  }
  if (kind === "write") {
    hold.waitingForDrain = true;
    return false;
  }
  return kind === "flushHeaders" ? undefined : hold.res;
}

/** `end` after the head went out: the cookie can no longer change, but the data must be written first. */
function endAfterHead(hold: Hold, args: Args): unknown {
  const committed = commitAll(hold);
  if (!(committed instanceof Promise)) return pass(hold, "end", args);
  hold.state = "holding";
  hold.queue.push({ kind: "end", args });
  deferSocketDestroy(hold);
  // Failing now, the client must not take a complete-looking response: cut it.
  committed.then(
    () => release(hold, undefined),
    (err: unknown) => abort(hold, err),
  );
  return hold.res;
}

/** A call made after we answered the request ourselves: it goes nowhere. */
function discarded(res: ServerResponse, kind: Kind, args: Args): unknown {
  if (kind === "write") {
    const cb = args.find((a): a is (e?: unknown) => void => typeof a === "function");
    if (cb !== undefined) process.nextTick(cb, new Error("[shared-session] response was replaced by an error"));
    return false;
  }
  return kind === "flushHeaders" ? undefined : res;
}
