// Every relative link and image of the README must work where the README is read from the npm
// tarball (npm's site and an installed node_modules/shared-session): its target must be packed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent"], { cwd: root, encoding: "utf8" }));
const packed = new Set(pack.files.map((file) => file.path));
const readme = readFileSync(resolve(root, "README.md"), "utf8").replace(/```[\s\S]*?```/g, "");
const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]+src="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
const relative = targets.filter((t) => !/^(?:[a-z]+:|#)/i.test(t)).map((t) => decodeURIComponent(t.split("#")[0]).replace(/^\.\//, ""));
const missing = [...new Set(relative)].filter((path) => !packed.has(path) && ![...packed].some((file) => file.startsWith(`${path.replace(/\/$/, "")}/`)));
if (missing.length > 0) {
  console.error(`README links to files the npm tarball does not hold (add them to "files" or drop the link):\n  ${missing.join("\n  ")}`);
  process.exit(1);
}
console.log(`readme links ok: ${new Set(relative).size} relative targets, all in the tarball`);
