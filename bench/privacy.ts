/**
 * What the operations-and-privacy options cost the core, without any server: CPU time per session
 * load + commit through the manager against a store that answers at once from memory, for a read
 * (a valid cookie, nothing changed) and a write (one key changed), with each option on and off.
 * CPU time stays comparable on a busy machine; run the variants in one process, alternating.
 *
 *   npx tsx bench/privacy.ts                # the package as tsup builds it
 *   BENCH_SOURCE=1 npx tsx bench/privacy.ts
 */
import { randomBytes } from "node:crypto";
import { tracingChannel } from "node:diagnostics_channel";
import type { SessionOptions, SessionStore } from "../src/index.js";
import { SECRET } from "./config.js";
import { buildLibrary, library } from "./library.js";

const CONCURRENCY = 64;
const OPERATIONS = 64_000;
const RUNS = 5;

if (!process.env.BENCH_LIBRARY_DIR) await buildLibrary();
const { createSessionManager } = (await library()).core;

function instantStore(): SessionStore {
  const records = new Map<string, string>();
  return {
    name: "InstantStore",
    capabilities: { refreshOnGet: true, list: false, compareAndSet: false, ownerIndex: false },
    get: async (id) => records.get(id) ?? null,
    create: async (id, record) => {
      if (records.has(id)) return false;
      records.set(id, record);
      return true;
    },
    update: async (id, record) => records.has(id) && Boolean(records.set(id, record)),
    touch: async (id) => records.has(id),
    destroy: async (id) => void records.delete(id),
  };
}

interface Variant {
  readonly name: string;
  readonly options: Partial<SessionOptions>;
  readonly subscribe?: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: "default", options: {} },
  { name: "tracing subscribed (3 channels, no-op handlers)", options: {}, subscribe: true },
  { name: "encryption (AES-256-GCM)", options: { encryption: { keys: [randomBytes(32)] } } },
];

const noop = () => undefined;
const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };

async function prepare(variant: Variant) {
  const manager = createSessionManager<{ userId: number; n?: number; note: string }>({ store: instantStore(), secret: SECRET, ...variant.options } as SessionOptions<{
    userId: number;
    n?: number;
    note: string;
  }>);
  const cookies: string[] = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const session = await manager.load(undefined, { secure: false });
    session.userId = i + 1;
    // About 200 bytes of data, a typical logged-in session.
    session.note = "x".repeat(160);
    const { setCookie } = await manager.commit(session);
    cookies.push(setCookie!.split(";", 1)[0]!);
  }
  return { manager, cookies };
}

/** Microseconds of CPU per load + commit; `write` changes one key each time. */
async function run(variant: Variant, prepared: Awaited<ReturnType<typeof prepare>>, total: number, write: boolean): Promise<number> {
  const { manager, cookies } = prepared;
  const channels = ["load", "commit", "store"].map((c) => tracingChannel(`shared-session:${c}`));
  if (variant.subscribe) for (const c of channels) c.subscribe(handlers);
  const perLoop = total / CONCURRENCY;
  const before = process.cpuUsage();
  await Promise.all(
    cookies.map(async (cookie) => {
      for (let k = 0; k < perLoop; k++) {
        const session = await manager.load(cookie, { secure: false });
        if (session.isNew) throw new Error(`privacy bench (${variant.name}): the session did not load`);
        if (write) session.n = k;
        await manager.commit(session);
      }
    }),
  );
  const used = process.cpuUsage(before);
  if (variant.subscribe) for (const c of channels) c.unsubscribe(handlers);
  return (used.user + used.system) / total;
}

const prepared = await Promise.all(VARIANTS.map(prepare));
const results = VARIANTS.map(() => ({ read: [] as number[], write: [] as number[] }));
for (const [i, variant] of VARIANTS.entries()) {
  await run(variant, prepared[i]!, OPERATIONS / 4, false);
  await run(variant, prepared[i]!, OPERATIONS / 4, true);
}
for (let r = 0; r < RUNS; r++) {
  for (const [i, variant] of VARIANTS.entries()) {
    results[i]!.read.push(await run(variant, prepared[i]!, OPERATIONS, false));
    results[i]!.write.push(await run(variant, prepared[i]!, OPERATIONS, true));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log("CPU per load + commit, µs (median of %d runs; all runs)", RUNS);
console.log("| variant | read, nothing changed | write, one key changed |");
console.log("|---|---|---|");
for (const [i, variant] of VARIANTS.entries()) {
  const { read, write } = results[i]!;
  const all = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
  console.log(`| ${variant.name} | ${median(read).toFixed(2)} (${all(read)}) | ${median(write).toFixed(2)} (${all(write)}) |`);
}
