import { tracingChannel } from "node:diagnostics_channel";
import { describe, expect, it } from "vitest";
import { createSessionManager } from "../../src/index.js";
import { CountingStore, SECRET } from "../helpers/manager-support.js";

describe("tracing channels with a subscriber", () => {
  it("commit of something that is not a session rejects as without one, traced or not", async () => {
    const manager = createSessionManager({ store: new CountingStore(), secret: SECRET });
    const noop = () => undefined;
    const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
    await expect(manager.commit({} as never)).rejects.toThrow(TypeError);
    const channel = tracingChannel("shared-session:commit");
    channel.subscribe(handlers);
    try {
      await expect(manager.commit({} as never)).rejects.toThrow(TypeError);
      // The flag that keeps commitNow from tracing itself twice is cleared: the next commit is traced.
      const seen: unknown[] = [];
      const listen = { ...handlers, asyncEnd: (message: unknown) => seen.push({ ...(message as object) }) };
      channel.subscribe(listen);
      const session = await manager.load(undefined, { secure: false });
      await manager.commit(session);
      channel.unsubscribe(listen);
      expect(seen).toEqual([{ session: undefined, outcome: "none", conflicts: 0 }]);
    } finally {
      channel.unsubscribe(handlers);
    }
  });
});
