import type { Cluster } from "ioredis";
import { messageOf } from "./errors.js";

/**
 * A Cluster node's redirection, as ioredis passes it on when it did not follow it, or ioredis's
 * refusal to send an auto-pipelined batch whose keys the slot map now puts on different nodes.
 */
const REDIRECT = /^(MOVED|ASK) \d+ |^All keys in the pipeline should belong to the same slots allocation group/;
/** Resends after a redirection that came back through the auto-pipeline; then the error stands. */
const RESENDS = 3;

/**
 * Run `send` on a Cluster client and, when a node answers `MOVED` or `ASK`, send it again outside
 * auto-pipelining (`send(true)`), where ioredis follows the redirection itself.
 *
 * Why: ioredis (6.0) follows redirections for single commands, but an auto-pipelined batch whose
 * commands are answered with different redirections (slots moving between masters, a failover)
 * hands each command its raw `MOVED`/`ASK` error instead, and a batch queued before the slot map
 * changed fails as a whole (redis/ioredis#2075). Sessions on a
 * Cluster that is being resharded would then fail for as long as a slot moves.
 */
export async function followRedirects<T>(client: Cluster, send: (direct?: boolean) => Promise<T>): Promise<T> {
  try {
    return await send(false);
  } catch (err) {
    if (!REDIRECT.test(messageOf(err))) throw err;
  }
  for (let resend = 1; ; resend++) {
    try {
      return await unpipelined(client, () => send(true));
    } catch (err) {
      if (resend >= RESENDS || !REDIRECT.test(messageOf(err))) throw err;
    }
  }
}

/**
 * Call `send` with auto-pipelining off for the commands it issues synchronously: ioredis decides
 * per call, when the command method runs, so nothing else can slip into the window.
 */
export function unpipelined<T>(client: Cluster, send: () => Promise<T>): Promise<T> {
  const options = client.options as { enableAutoPipelining?: boolean };
  const before = options.enableAutoPipelining;
  if (!before) return send();
  options.enableAutoPipelining = false;
  try {
    return send();
  } finally {
    options.enableAutoPipelining = before;
  }
}
