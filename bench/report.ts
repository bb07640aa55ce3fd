/** Results of a run: the JSON shape, the targets, the Markdown tables and the SVG chart. */
import type { BenchConfig, Framework, Scenario, Variant } from "./config.js";
import { FRAMEWORKS, SCENARIO_TEXT, SCENARIOS, VARIANT_LABEL } from "./config.js";
import type { CoreResult } from "./core.js";
import type { Cell } from "./matrix.js";
import type { MemoryResult } from "./memory.js";
import type { ScaleOutResult } from "./scaleout.js";

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly os: string;
  readonly redis: string;
  readonly memcached: string;
  /** 1, 5 and 15 minute load averages when the run started and ended (other work on the machine skews figures). */
  readonly loadBefore: number[];
  readonly loadAfter: number[];
}

export interface TargetCheck {
  readonly id: string;
  readonly description: string;
  readonly target: string;
  readonly measured: string;
  /** `null` when not measured in this run. */
  readonly pass: boolean | null;
}

export interface BenchResults {
  readonly generatedAt: string;
  readonly minutes: number;
  readonly machine: MachineInfo;
  readonly config: BenchConfig;
  readonly cells: Cell[];
  readonly core: CoreResult | null;
  readonly memory: MemoryResult | null;
  /** 1, 2, 4 app processes on one Redis (absent in results of earlier runs). */
  readonly scaleOut?: ScaleOutResult | null;
  readonly targets: TargetCheck[];
}

const pct = (x: number | undefined) => (x === undefined ? "-" : `${Math.round(x * 100)} %`);
const times = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)}x`);
const num = (x: number) => Math.round(x).toLocaleString("en-US");
const cmd = (x: number) => (Math.abs(x - Math.round(x)) < 0.005 ? String(Math.round(x)) : x.toFixed(2));
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MB`;

function cell(cells: readonly Cell[], framework: Framework, scenario: Scenario, variant: Variant): Cell | undefined {
  return cells.find((c) => c.framework === framework && c.scenario === scenario && c.variant === variant);
}

/** The issue's targets, checked against one run. */
export function checkTargets(cells: readonly Cell[], core: CoreResult | null, memory: MemoryResult | null): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const expected: Record<Scenario, number> = { read: 1, write: 2, anonymous: 0, login: 1 };
  for (const scenario of SCENARIOS) {
    for (const [variant, store] of [
      ["ours-redis", "redis"],
      ["ours-memcached", "memcached"],
    ] as const) {
      // Write = 2 for both: Redis GETEX + the compare-and-set script; memcached get-and-touch + a
      // CAS replace carrying the token the get-and-touch returned.
      const found = FRAMEWORKS.map((f) => cell(cells, f, scenario, variant)).filter((c): c is Cell => c !== undefined);
      if (found.length === 0) continue;
      const values = found.map((c) => c.commands[store]);
      const worst = values.reduce((a, b) => (Math.abs(b - expected[scenario]) > Math.abs(a - expected[scenario]) ? b : a));
      checks.push({
        id: `commands.${scenario}.${store}`,
        description: `${store === "redis" ? "Redis" : "Memcached"} commands per request, ${scenario} (every framework, counted on the server)`,
        target: String(expected[scenario]),
        measured: found.map((c) => `${c.framework} ${cmd(c.commands[store])}`).join(", "),
        // In-flight requests at the end of a round make the count a hair off a whole number.
        pass: Math.abs(worst - expected[scenario]) < 0.02,
      });
    }
  }
  const ratio = (id: string, description: string, min: number, value: number | undefined, format: (x: number | undefined) => string) =>
    checks.push({ id, description, target: `>= ${format(min)}`, measured: format(value), pass: value === undefined ? null : value >= min });
  const bareTargets: Record<Framework, number> = { fastify: 0.45, koa: 0.5, express: 0.85 };
  const peerTargets: Record<Framework, number> = { fastify: 2.0, koa: 1.8, express: 1.25 };
  for (const framework of FRAMEWORKS) {
    const ours = cell(cells, framework, "read", "ours-redis");
    ratio(`read.${framework}.vsBare`, `Read, ${framework}: ours (Redis) / bare ${framework}`, bareTargets[framework], ours?.vsBare, pct);
    ratio(`read.${framework}.vsPeer`, `Read, ${framework}: ours (Redis) / ${VARIANT_LABEL[framework]["peer-redis"]}`, peerTargets[framework], ours?.vsPeer, times);
  }
  for (const scenario of ["read", "write"] as const) {
    // Redis is what every app process shares: its CPU per request bounds how far the app scales out.
    const pairs = FRAMEWORKS.flatMap((f) => {
      const [ours, peer] = [cell(cells, f, scenario, "ours-redis"), cell(cells, f, scenario, "peer-redis")];
      return ours && peer ? [{ f, ours: ours.cpu.redis, peer: peer.cpu.redis }] : [];
    });
    checks.push({
      id: `redisCpu.${scenario}`,
      description: `Redis CPU per request, ${scenario}: ours / the peer on Redis (every framework, \`INFO cpu\`)`,
      target: "<= 1.00x",
      measured: pairs.map((p) => `${p.f} ${p.ours.toFixed(1)} / ${p.peer.toFixed(1)} µs (${(p.ours / p.peer).toFixed(2)}x)`).join(", ") || "-",
      pass: pairs.length === 0 ? null : pairs.every((p) => p.ours <= p.peer),
    });
  }
  const mc = cell(cells, "express", "read", "ours-memcached");
  ratio("read.express.memcached.vsPeer", "Read, express: ours (Memcached) / express-session + connect-memcached", 1.5, mc?.vsPeer, times);
  ratio("core.ratio", `Core load + commit / bare ioredis GETEX loop (${core?.concurrency ?? 64} in flight)`, 0.8, core?.ratio, pct);
  checks.push({
    id: "memory.growth",
    description: "Heap growth of one app process from 1,000 to 100,000 distinct sessions",
    target: "<= 4 MB",
    measured: memory ? `${mb(memory.growth)} (${memory.points.map((p) => `${num(p.sessions)}: ${mb(p.heapUsed)}`).join(", ")})` : "-",
    pass: memory ? memory.growth <= 4 * 1048576 : null,
  });
  return checks;
}

/** The Markdown report (bench/results/latest.md). */
export function markdown(results: BenchResults): string {
  const { machine, config } = results;
  const lines: string[] = [];
  lines.push(`# Benchmark results`);
  lines.push("");
  lines.push(
    `${results.generatedAt.slice(0, 16).replace("T", " ")} UTC · ${machine.cpus} × ${machine.cpuModel} · Node ${machine.node} · Redis ${machine.redis} · Memcached ${machine.memcached} · ` +
      `${config.connections} connections (one session each) · ${config.duration} s per round · median of ${config.readRounds} rounds (read) / ${config.rounds} (others) · ` +
      `${config.warmup} s warm-up · load average before ${machine.loadBefore.map((x) => x.toFixed(2)).join(" ")}, after ${machine.loadAfter.map((x) => x.toFixed(2)).join(" ")} · ${results.minutes.toFixed(1)} min${config.quick ? " · QUICK MODE (not for figures)" : ""}`,
  );
  lines.push("");
  lines.push(`## Targets`);
  lines.push("");
  lines.push(`| target | wanted | measured | |`);
  lines.push(`|---|---|---|---|`);
  for (const t of results.targets) lines.push(`| ${t.description} | ${t.target} | ${t.measured} | ${t.pass === null ? "not run" : t.pass ? "pass" : "**miss**"} |`);
  const floors = FRAMEWORKS.flatMap((framework) => {
    const [bare, floor, ours] = (["bare", "floor-redis", "ours-redis"] as const).map((v) => cell(results.cells, framework, "read", v));
    return bare && floor && ours ? [{ framework, bare, floor, ours }] : [];
  });
  if (floors.length > 0) {
    lines.push("");
    lines.push(`## The floor: one Redis round trip per request`);
    lines.push("");
    lines.push(
      "Read scenario. The floor is the bare framework whose handler awaits one ioredis `GETEX` (same client settings as ours) and does nothing else: " +
        "no cookie, no signature, no session. No Redis-backed session can beat it; what separates ours from it is the whole cost of the session layer.",
    );
    lines.push("");
    lines.push(`| framework | bare req/s | floor req/s (vs bare) | ours req/s (vs bare) | ours / floor | app CPU µs/req: bare · floor · ours |`);
    lines.push(`|---|---:|---:|---:|---:|---:|`);
    for (const { framework, bare, floor, ours } of floors) {
      const cpu = (c: Cell) => (c.cpu ? c.cpu.app.toFixed(1) : "-");
      lines.push(
        `| ${framework} | ${num(bare.rps)} | ${num(floor.rps)} (${pct(floor.vsBare)}) | ${num(ours.rps)} (${pct(ours.vsBare)}) | ${pct(ours.rps / floor.rps)} | ${cpu(bare)} · ${cpu(floor)} · ${cpu(ours)} |`,
      );
    }
  }
  for (const scenario of config.scenarios) {
    lines.push("");
    lines.push(`## ${scenario[0]!.toUpperCase()}${scenario.slice(1)}: ${SCENARIO_TEXT[scenario]}`);
    lines.push("");
    lines.push(`| framework | variant | req/s | p99 ms | vs bare | vs peer | Redis cmd/req | Memcached cmd/req | CPU µs/req: app · store · load gen |`);
    lines.push(`|---|---|---:|---:|---:|---:|---:|---:|---:|`);
    for (const c of results.cells.filter((x) => x.scenario === scenario)) {
      const name = c.variant.startsWith("ours") ? `**${c.label}**` : c.label;
      const failures = c.failures > 0 ? ` (${c.failures} failed)` : "";
      const cpu = c.cpu ? `${c.cpu.app.toFixed(1)} · ${(c.cpu.redis + c.cpu.memcached).toFixed(1)} · ${c.cpu.loadgen.toFixed(1)}` : "-";
      lines.push(
        `| ${c.framework} | ${name} | ${num(c.rps)}${failures} | ${c.p99} | ${pct(c.vsBare)} | ${times(c.vsPeer)} | ${cmd(c.commands.redis)} | ${cmd(c.commands.memcached)} | ${cpu} |`,
      );
    }
  }
  const redisCells = results.cells.filter((c) => c.commands.redis > 0.05 && c.cpu.redis > 0);
  if (redisCells.length > 0) {
    lines.push("");
    lines.push(`## Redis CPU per request, and what one Redis core serves`);
    lines.push("");
    lines.push(
      "Redis CPU time per request (`used_cpu_user + used_cpu_sys` from `INFO cpu`, before and after each round, over the requests sent), for every variant that uses Redis. " +
        "Every app process shares Redis, so this decides how many requests per second one Redis core (or one Cluster shard) sustains: 1,000,000 / µs per request.",
    );
    lines.push("");
    lines.push(`| scenario | framework | variant | Redis cmd/req | Redis CPU µs/req | req/s per Redis core |`);
    lines.push(`|---|---|---|---:|---:|---:|`);
    for (const c of redisCells) {
      const name = c.variant.startsWith("ours") ? `**${c.label}**` : c.label;
      lines.push(`| ${c.scenario} | ${c.framework} | ${name} | ${cmd(c.commands.redis)} | ${c.cpu.redis.toFixed(2)} | ${num(1e6 / c.cpu.redis)} |`);
    }
  }
  if (results.scaleOut && results.scaleOut.rows.length > 0) {
    const { framework, rows } = results.scaleOut;
    lines.push("");
    lines.push(`## Scale-out: 1, 2, 4 ${framework} processes on one Redis`);
    lines.push("");
    lines.push(
      `Every process serves the same sessions; the ${config.connections} connections are shared out over the processes (one autocannon per process). ` +
        `Median of ${config.rounds} rounds of ${config.duration} s. On a machine with fewer cores than processes + Redis + the load generator, requests/s cannot grow with processes; ` +
        `Redis CPU per request is the figure that carries over.`,
    );
    lines.push("");
    lines.push(`| variant | scenario | processes | req/s | Redis cmd/req | Redis CPU µs/req | req/s per Redis core |`);
    lines.push(`|---|---|---:|---:|---:|---:|---:|`);
    for (const r of rows) {
      const name = r.variant.startsWith("ours") ? `**${VARIANT_LABEL[framework][r.variant]}**` : VARIANT_LABEL[framework][r.variant];
      const failures = r.failures > 0 ? ` (${r.failures} failed)` : "";
      lines.push(`| ${name} | ${r.scenario} | ${r.processes} | ${num(r.rps)}${failures} | ${cmd(r.redisCommands)} | ${r.redisCpu.toFixed(2)} | ${num(r.perRedisCore)} |`);
    }
  }
  if (results.core) {
    const core = results.core;
    lines.push("");
    lines.push(`## Core: load + commit against a bare GETEX loop`);
    lines.push("");
    lines.push(
      `${core.concurrency} in flight, ${core.seconds} s rounds, same ioredis client (createRedisClient: auto-pipelining). ` +
        `Bare \`GETEX\` loop ${num(core.bare)}/s (${core.bareCpu.toFixed(2)} µs client CPU per operation), manager load + commit ${num(core.manager)}/s ` +
        `(${core.managerCpu.toFixed(2)} µs): **${pct(core.ratio)}** (median of ${core.rounds.length} per-round ratios).`,
    );
    lines.push("");
    lines.push(`What the design choices save, same client, same ${core.concurrency} in flight (medians):`);
    lines.push("");
    lines.push(`| operation | ops/s | client CPU µs/op | Redis cmd/op | Redis CPU µs/op |`);
    lines.push(`|---|---:|---:|---:|---:|`);
    for (const row of core.design) {
      const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
      lines.push(`| ${row.name} | ${num(row.opsPerSecond)} | ${f(row.clientCpu)} | ${f(row.redisCommands)} | ${f(row.redisCpu)} |`);
    }
  }
  if (results.memory) {
    const m = results.memory;
    lines.push("");
    lines.push(`## Memory`);
    lines.push("");
    lines.push(`${m.app}, heap after a full GC: ${m.points.map((p) => `${num(p.sessions)} sessions ${mb(p.heapUsed)}`).join(", ")}; growth ${mb(m.growth)}.`);
  }
  lines.push("");
  return lines.join("\n");
}

const COLORS: Record<Variant, string> = {
  bare: "#9e9e9e",
  "floor-redis": "#616161",
  "ours-redis": "#c62828",
  "ours-memcached": "#ef6c00",
  "peer-redis": "#1565c0",
  "peer-memcached": "#00838f",
  "peer-redis-fixed": "#90caf9",
};

const SHORT: Record<Variant, string> = {
  bare: "no session",
  "floor-redis": "one GETEX, no session",
  "ours-redis": "ours, Redis",
  "ours-memcached": "ours, Memcached",
  "peer-redis": "peer, Redis",
  "peer-memcached": "peer, Memcached",
  "peer-redis-fixed": "peer, no rolling",
};

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The chart (bench/results/chart.svg): requests/s per variant, one panel per framework and scenario. */
export function svg(results: BenchResults): string {
  const frameworks = FRAMEWORKS.filter((f) => results.cells.some((c) => c.framework === f));
  const scenarios = SCENARIOS.filter((s) => results.cells.some((c) => c.scenario === s));
  const margin = 16;
  const colWidth = 360;
  const labelWidth = 112;
  const barMax = 150;
  const barHeight = 16;
  const barGap = 5;
  const titleHeight = 20;
  const maxBars = Math.max(1, ...frameworks.flatMap((f) => scenarios.map((s) => results.cells.filter((c) => c.framework === f && c.scenario === s).length)));
  const panelHeight = titleHeight + maxBars * (barHeight + barGap) + 14;
  const headerHeight = 46;
  const legendHeight = 20 + frameworks.length * 16;
  const width = margin * 2 + frameworks.length * colWidth;
  const height = headerHeight + scenarios.length * panelHeight + legendHeight + margin;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${margin}" y="22" font-size="15" font-weight="600" fill="#212121">Requests per second (median), higher is better; % of the bare framework</text>`);
  out.push(
    `<text x="${margin}" y="38" fill="#616161">${escapeXml(
      `${results.machine.cpus} × ${results.machine.cpuModel}, Node ${results.machine.node}, Redis ${results.machine.redis}, Memcached ${results.machine.memcached}, ${results.config.connections} connections, one session each${results.config.quick ? " (QUICK MODE)" : ""}`,
    )}</text>`,
  );
  scenarios.forEach((scenario, row) => {
    frameworks.forEach((framework, col) => {
      const x0 = margin + col * colWidth;
      const y0 = headerHeight + row * panelHeight;
      const cells = results.cells.filter((c) => c.framework === framework && c.scenario === scenario);
      const max = Math.max(1, ...cells.map((c) => c.rps));
      out.push(`<text x="${x0}" y="${y0 + 14}" font-size="12" font-weight="600" fill="#212121">${escapeXml(`${framework} · ${scenario}`)}</text>`);
      cells.forEach((c, i) => {
        const y = y0 + titleHeight + i * (barHeight + barGap);
        const w = Math.max(1, (c.rps / max) * barMax);
        const ours = c.variant.startsWith("ours");
        out.push(`<text x="${x0 + labelWidth - 6}" y="${y + barHeight - 4}" text-anchor="end" fill="#424242"${ours ? ' font-weight="600"' : ""}>${escapeXml(SHORT[c.variant])}</text>`);
        out.push(`<rect x="${x0 + labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" rx="2" fill="${COLORS[c.variant]}"><title>${escapeXml(`${c.label}: ${num(c.rps)} req/s, p99 ${c.p99} ms`)}</title></rect>`);
        const note = c.vsBare === undefined ? "" : ` · ${pct(c.vsBare)}`;
        out.push(`<text x="${(x0 + labelWidth + w + 5).toFixed(1)}" y="${y + barHeight - 4}" fill="#212121">${escapeXml(`${num(c.rps)}${note}`)}</text>`);
      });
    });
  });
  const ly = headerHeight + scenarios.length * panelHeight + 8;
  out.push(`<text x="${margin}" y="${ly}" fill="#424242" font-weight="600">Peers (each configured with the same 24 h idle timeout; see the README):</text>`);
  frameworks.forEach((framework, i) => {
    const peers = (["peer-redis", "peer-memcached", "peer-redis-fixed"] as const)
      .filter((v) => results.cells.some((c) => c.framework === framework && c.variant === v))
      .map((v) => `${SHORT[v]} = ${VARIANT_LABEL[framework][v]}`);
    out.push(`<text x="${margin}" y="${ly + 16 * (i + 1)}" fill="#616161">${escapeXml(`${framework}: ${peers.join("; ")}`)}</text>`);
  });
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}
