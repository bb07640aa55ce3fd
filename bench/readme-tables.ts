/**
 * `npx tsx bench/readme-tables.ts [results.json]`: the README's Performance tables, printed as
 * Markdown from a run's results (bench/results/latest.json by default), so the README quotes the
 * run's figures without copying them by hand.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FRAMEWORKS, VARIANT_LABEL, type Framework, type Scenario, type Variant } from "./config.js";
import type { Cell } from "./matrix.js";
import type { BenchResults } from "./report.js";

const file = process.argv[2] ?? fileURLToPath(new URL("./results/latest.json", import.meta.url));
const results = JSON.parse(readFileSync(file, "utf8")) as BenchResults;
const num = (x: number) => Math.round(x).toLocaleString("en-US");
const pct = (x: number | undefined) => (x === undefined ? "-" : `${Math.round(x * 100)} %`);
const cmd = (x: number) => (Math.abs(x - Math.round(x)) < 0.02 ? String(Math.round(x)) : x.toFixed(2));
const find = (framework: Framework, scenario: Scenario, variant: Variant): Cell | undefined =>
  results.cells.find((c) => c.framework === framework && c.scenario === scenario && c.variant === variant);
const out: string[] = [];

out.push("| scenario | framework | no session | ours, Redis | ours, Memcached | peer | ours (Redis) / peer | commands per request: ours (Redis · Memcached) / peer |");
out.push("|---|---|---:|---:|---:|---:|---:|---|");
for (const scenario of results.config.scenarios) {
  for (const framework of FRAMEWORKS) {
    const [bare, ours, mc, peer, peerMc] = (["bare", "ours-redis", "ours-memcached", "peer-redis", "peer-memcached"] as const).map((v) => find(framework, scenario, v));
    if (!bare || !ours || !peer) continue;
    const with_ = (c: Cell | undefined) => (c ? `${num(c.rps)} (${pct(c.vsBare)})` : "-");
    const peerCommands = `${cmd(peer.commands.redis)}${peerMc ? ` (connect-memcached ${cmd(peerMc.commands.memcached)})` : ""}`;
    out.push(
      `| ${scenario} | ${framework} | ${num(bare.rps)} | ${with_(ours)} | ${with_(mc)} | ${with_(peer)} | ${(ours.rps / peer.rps).toFixed(2)}x | ${cmd(ours.commands.redis)} · ${mc ? cmd(mc.commands.memcached) : "-"} / ${peerCommands} |`,
    );
  }
}
out.push("");
out.push("| scenario | framework | ours: Redis µs/req → req/s per Redis core | peer | peer, no rolling | ours / peer (Redis CPU) |");
out.push("|---|---|---:|---:|---:|---:|");
for (const scenario of ["read", "write", "login"] as const) {
  for (const framework of FRAMEWORKS) {
    const ours = find(framework, scenario, "ours-redis");
    const peer = find(framework, scenario, "peer-redis");
    const fixed = find(framework, scenario, "peer-redis-fixed");
    if (!ours || !peer) continue;
    const core = (c: Cell | undefined) => (c ? `${c.cpu.redis.toFixed(1)} → ${num(1e6 / c.cpu.redis)}` : "-");
    out.push(`| ${scenario} | ${framework} (${VARIANT_LABEL[framework]["peer-redis"]}) | ${core(ours)} | ${core(peer)} | ${core(fixed)} | ${(ours.cpu.redis / peer.cpu.redis).toFixed(2)}x |`);
  }
}
if (results.scaleOut) {
  out.push("");
  out.push(`| ${results.scaleOut.framework} processes on one Redis | ours: req/s · Redis µs/req · req/s per Redis core | peer: req/s · Redis µs/req · req/s per Redis core |`);
  out.push("|---|---:|---:|");
  for (const scenario of ["read", "write"] as const) {
    for (const processes of results.config.scaleProcesses ?? [1, 2, 4]) {
      const row = (variant: Variant) => results.scaleOut!.rows.find((r) => r.variant === variant && r.scenario === scenario && r.processes === processes);
      const show = (variant: Variant) => {
        const r = row(variant);
        return r ? `${num(r.rps)} · ${r.redisCpu.toFixed(1)} · ${num(r.perRedisCore)}` : "-";
      };
      out.push(`| ${scenario}, ${processes} | ${show("ours-redis")} | ${show("peer-redis")} |`);
    }
  }
}
process.stdout.write(`${out.join("\n")}\n`);
