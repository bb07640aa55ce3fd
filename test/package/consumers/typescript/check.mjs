// Each variant gets the same sources and the same SessionData augmentation, is compiled by tsc with
// its own module setting (in parallel), and its app is then run by node (CommonJS or ESM as its
// package.json says). quickstart.ts (the README's) is compiled, not run: it would listen.
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const variants = ["cjs-node10", "cjs-node16", "esm-node16", "esm-nodenext", "esm-bundler"];
const tsc = join("node_modules", "typescript", "bin", "tsc");
if (existsSync("node_modules/vitest")) throw new Error("vitest must not be installed here: MemoryStore has to work without it");
const failures = [];
await Promise.all(
  variants.map(async (variant) => {
    for (const file of readdirSync("shared")) copyFileSync(join("shared", file), join(variant, file));
    try {
      await run(process.execPath, [tsc, "-p", variant]);
      const { stdout } = await run(process.execPath, [join(variant, "out", "app.js")]);
      if (!stdout.startsWith("ok ")) throw new Error(`unexpected output ${stdout}`);
      console.log(`${variant}: tsc and node ok`);
    } catch (err) {
      failures.push(`${variant}: ${err.message}\n${err.stdout ?? ""}${err.stderr ?? ""}`);
    }
  }),
);
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
