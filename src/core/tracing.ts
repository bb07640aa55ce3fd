import { tracingChannel, type TracingChannel } from "node:diagnostics_channel";

/**
 * What {@link loadChannel} publishes. `session` is a hash (never the id); it is set once an id is known.
 * `outcome`: `none` (no session cookie), `rejected` (signature or id format), `hit`, `miss` (the store
 * does not know the id), `corrupt`, `expired`, `error` (the store failed; `error` holds why).
 */
export interface LoadTraceContext {
  session: string | undefined;
  outcome: "none" | "rejected" | "hit" | "miss" | "corrupt" | "expired" | "error" | undefined;
  error?: unknown;
}

/**
 * What {@link commitChannel} publishes. `outcome`: `none` (an unused new session: nothing written),
 * `unchanged`, `created`, `written`, `gone` (the record vanished meanwhile: nothing written), `error`.
 * `conflicts`: compare-and-set conflicts met and merged on the way (0 when none).
 */
export interface CommitTraceContext {
  session: string | undefined;
  outcome: "none" | "unchanged" | "created" | "written" | "gone" | "error" | undefined;
  conflicts: number;
  error?: unknown;
}

/**
 * What {@link storeChannel} publishes, once per store call. `operation` is the store method (`get`,
 * `create`, `update`, `touch`, `destroy`, `compareAndSet`, `ttl`, `owners.add`, …). `outcome`: `hit` /
 * `miss` (reads), `created` / `exists` (create), `written` / `missing` / `conflict` (update, touch,
 * compareAndSet), `done` (others), `error`.
 */
export interface StoreTraceContext {
  readonly store: string;
  readonly operation: string;
  readonly session: string | undefined;
  outcome: "hit" | "miss" | "created" | "exists" | "written" | "missing" | "conflict" | "done" | "error" | undefined;
  error?: unknown;
}

/** `shared-session:load`: one per {@link SessionManager.load}. */
export const loadChannel: TracingChannel<unknown, LoadTraceContext> = tracingChannel("shared-session:load");
/** `shared-session:commit`: one per {@link SessionManager.commit}. */
export const commitChannel: TracingChannel<unknown, CommitTraceContext> = tracingChannel("shared-session:commit");
/** `shared-session:store`: one per store call the manager makes. */
export const storeChannel: TracingChannel<unknown, StoreTraceContext> = tracingChannel("shared-session:store");

type AnyContext = { outcome: unknown; error?: unknown };

/**
 * Whether anyone listens. `TracingChannel.hasSubscribers` exists from Node 20.13 / 22.0; before that,
 * ask the five channels.
 */
export function traced(channel: TracingChannel<unknown, object>): boolean {
  const has = (channel as { hasSubscribers?: boolean }).hasSubscribers;
  if (has !== undefined) return has;
  return (
    channel.start.hasSubscribers || channel.end.hasSubscribers || channel.asyncStart.hasSubscribers || channel.asyncEnd.hasSubscribers || channel.error.hasSubscribers
  );
}

/**
 * Run `fn` inside a trace: `start`, then `end` when `fn` returns, then `asyncStart` and `asyncEnd`
 * when the outcome is known (at once when `fn` returned a value, when its promise settles otherwise),
 * with `error` before them on failure. Every operation ends with `asyncEnd`, whichever way it went,
 * so a subscriber closes its span there. `settle` fills the context's outcome from the result.
 */
export function trace<C extends AnyContext, T>(
  channel: TracingChannel<unknown, C>,
  context: C,
  fn: () => T | Promise<T>,
  settle: (context: C, value: T) => void,
): T | Promise<T> {
  const failed = (err: unknown): void => {
    context.outcome ??= "error";
    context.error = err;
    channel.error.publish(context);
  };
  const done = (): void => {
    channel.asyncStart.publish(context);
    channel.asyncEnd.publish(context);
  };
  return channel.start.runStores(context, () => {
    let result: T | Promise<T>;
    try {
      result = fn();
    } catch (err) {
      failed(err);
      channel.end.publish(context);
      done();
      throw err;
    }
    channel.end.publish(context);
    if (!(result instanceof Promise)) {
      settle(context, result);
      done();
      return result;
    }
    return result.then(
      (value) => {
        settle(context, value);
        done();
        return value;
      },
      (err: unknown) => {
        failed(err);
        done();
        throw err;
      },
    );
  });
}

/** The outcome of a store call from what it resolved to. */
export function storeOutcome(operation: string, value: unknown): StoreTraceContext["outcome"] {
  switch (operation) {
    case "get":
      return value === null ? "miss" : "hit";
    case "create":
      return value === true ? "created" : "exists";
    case "update":
    case "touch":
      return value === true ? "written" : "missing";
    case "compareAndSet": {
      const status = (value as { status?: string } | null)?.status;
      return status === "written" ? "written" : status === "conflict" ? "conflict" : "missing";
    }
    case "ttl":
      return value === null ? "miss" : "hit";
    default:
      return "done";
  }
}
