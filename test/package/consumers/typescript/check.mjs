// Each variant gets the same app and the same SessionData augmentation, is compiled by tsc with its
// own module setting, and the output is run by node (CommonJS or ESM as its package.json says).
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const variants = ["cjs-node10", "cjs-node16", "esm-node16", "esm-nodenext", "esm-bundler"];
const tsc = join("node_modules", "typescript", "bin", "tsc");
if (existsSync("node_modules/vitest")) throw new Error("vitest must not be installed here: MemoryStore has to work without it");
for (const variant of variants) {
  for (const file of readdirSync("shared")) copyFileSync(join("shared", file), join(variant, file));
  execFileSync(process.execPath, [tsc, "-p", variant], { stdio: "inherit" });
  const out = execFileSync(process.execPath, [join(variant, "out", "app.js")], { encoding: "utf8" });
  if (!out.startsWith("ok ")) throw new Error(`${variant}: unexpected output ${out}`);
  console.log(`${variant}: tsc and node ok`);
}
