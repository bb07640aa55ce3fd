/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`, or `BENCH_PROFILE=…` in the benchmark):
 * self time and inclusive time per function, the top entries.
 *
 *   npx tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [top=30] [filter]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) {
  console.error("usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top] [url filter]");
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample, attributed to the sampled node.
const selfTime = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...selfTime.values()].reduce((a, b) => a + b, 0);

function label(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "~/").replace(/^\/work\/main\//, "");
  return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, t] of selfTime) {
  const node = byId.get(id)!;
  const l = label(node);
  self.set(l, (self.get(l) ?? 0) + t);
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const name = label(byId.get(cur)!);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + t);
  }
}

/** Which package or layer a frame belongs to, for the per-layer totals. */
function layer(n: ProfileNode): string {
  const url = n.callFrame.url;
  const name = n.callFrame.functionName;
  if (url === "") return name.startsWith("(") ? name : `native ${name || "(anonymous)"}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return "node internals";
  if (/bench\/results\/build\/|\/src\/|\/adapters\//.test(url)) return "shared-session";
  return "other";
}

const byLayer = new Map<string, number>();
for (const [id, t] of selfTime) {
  const l = layer(byId.get(id)!);
  byLayer.set(l, (byLayer.get(l) ?? 0) + t);
}

const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
const show = (title: string, map: Map<string, number>) => {
  console.log(`\n${title} (total ${(total / 1000).toFixed(0)} ms)`);
  [...map.entries()]
    .filter(([name]) => !filter || name.includes(filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([name, t]) => console.log(`${pct(t)}  ${name}`));
};
show("self time by layer", byLayer);
show("self time", self);
show("inclusive time", inclusive);
