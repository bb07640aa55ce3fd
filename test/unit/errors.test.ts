import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { scrubError, SessionError, StoreUnavailableError } from "../../src/core/errors.js";

const ID = "0b7d1f3e-2c4a-4e6b-9d8f-1a3c5e7b9d2f";

class ReplyError extends Error {}

describe("scrubError (#16 items 1, 3)", () => {
  it("keeps the class, the first line of the message and the plain facts; drops the command and anything else", () => {
    const err = Object.assign(new ReplyError(`ERR unknown command 'EVAL', with args beginning with: 'sess:${ID}' '{"v":1}'\nmore ${ID}`), {
      command: { name: "eval", args: [`sess:${ID}`, '{"v":1,"secret":"data"}'] },
      code: "ERR",
      errno: -111,
      port: 6379,
      previousErrors: [new Error(ID)],
    });
    const copy = scrubError(err);
    expect(copy).toBeInstanceOf(ReplyError);
    expect(copy.message).toBe("ERR unknown command 'EVAL'");
    expect(copy).toMatchObject({ code: "ERR", errno: -111, port: 6379 });
    const all = inspect(copy, { showHidden: true, depth: 10 }) + String(copy.stack);
    expect(all).not.toContain(ID);
    expect(all).not.toContain("secret");
    expect(Object.keys(copy)).not.toContain("command");
  });

  it("follows cause, AggregateError's errors and ioredis's lastNodeError, scrubbing each", () => {
    const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED", syscall: "connect", command: { args: [ID] } });
    const cluster = Object.assign(new Error("Failed to refresh slots cache."), { lastNodeError: root });
    const top = new Error("outer", { cause: new AggregateError([cluster], "all failed") });
    const copy = scrubError(top);
    const aggregate = copy.cause as AggregateError;
    expect(aggregate.errors).toHaveLength(1);
    const node = (aggregate.errors[0] as Error).cause as Error & { code?: string };
    expect(node.code).toBe("ECONNREFUSED");
    expect(inspect(copy, { showHidden: true, depth: 20 })).not.toContain(ID);
  });

  it("returns this library's errors as they are, and names non-errors by type only", () => {
    const own = new SessionError("ERR_X", "x");
    expect(scrubError(own)).toBe(own);
    expect(scrubError(`sess:${ID}`).message).toBe("non-error thrown (string)");
  });

  it("StoreUnavailableError says only that the store is unavailable", () => {
    const error = new StoreUnavailableError("RedisStore", "get", { cause: new Error("127.0.0.1:6379 ECONNREFUSED"), retryAfter: 5 });
    expect(error.message).toBe("[shared-session] session store unavailable");
    expect(error).toMatchObject({ store: "RedisStore", operation: "get", status: 503, expose: true, headers: { "Retry-After": "5" } });
  });
});
