// Every relative link and image of the README must work where the README is read from the npm
// tarball (npm's site and an installed node_modules/shared-session): its target must be packed.
// And the README's TypeScript quick start and SessionData declaration must be, verbatim, the files
// the consumer projects compile under every moduleResolution (test/package/consumers/typescript/shared).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent"], { cwd: root, encoding: "utf8" }));
const packed = new Set(pack.files.map((file) => file.path));
const fullReadme = readFileSync(resolve(root, "README.md"), "utf8");
for (const file of ["quickstart.ts", "session.d.ts"]) {
  const path = resolve(root, "test/package/consumers/typescript/shared", file);
  // The file's leading comment lines say why it exists; the rest is what the README shows.
  const body = readFileSync(path, "utf8").replace(/^(?:\/\/.*\n)+/, file === "quickstart.ts" ? "" : "$&");
  if (!fullReadme.includes(body)) {
    console.error(`README.md does not hold ${path} verbatim${file === "quickstart.ts" ? " (after its leading comment)" : ""}: keep the two in step`);
    process.exit(1);
  }
}
const readme = fullReadme.replace(/```[\s\S]*?```/g, "");
const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]+src="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
const relative = targets.filter((t) => !/^(?:[a-z]+:|#)/i.test(t)).map((t) => decodeURIComponent(t.split("#")[0]).replace(/^\.\//, ""));
const missing = [...new Set(relative)].filter((path) => !packed.has(path) && ![...packed].some((file) => file.startsWith(`${path.replace(/\/$/, "")}/`)));
if (missing.length > 0) {
  console.error(`README links to files the npm tarball does not hold (add them to "files" or drop the link):\n  ${missing.join("\n  ")}`);
  process.exit(1);
}

// Anchors (the table of contents, cross references) must name a heading, as GitHub and npm slug them.
const slug = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
const headings = new Set([...fullReadme.replace(/```[\s\S]*?```/g, "").matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
for (const m of fullReadme.matchAll(/<a (?:id|name)="([^"]+)"/g)) headings.add(m[1]);
const anchors = targets.filter((t) => t.startsWith("#")).map((t) => t.slice(1));
const dangling = [...new Set(anchors)].filter((anchor) => !headings.has(anchor));
if (dangling.length > 0) {
  console.error(`README links to headings it does not have:\n  #${dangling.join("\n  #")}`);
  process.exit(1);
}

// The Options table lists every option of createSessionManager and every cookie attribute.
function fieldsOf(file, name) {
  const text = readFileSync(resolve(root, file), "utf8");
  const start = text.indexOf(`export interface ${name}`);
  const body = text.slice(start, text.indexOf("\n}", start));
  return [...body.matchAll(/^ {2}(?:readonly )?(\w+)\??:/gm)].map((m) => m[1]).filter((field) => !field.startsWith("__"));
}
// `cookie` is listed by its attributes.
const options = [...fieldsOf("src/core/manager.ts", "SessionOptions").filter((f) => f !== "cookie"), ...fieldsOf("src/core/cookie.ts", "CookieOptions").map((f) => `cookie.${f}`)];
const undocumented = options.filter((option) => !fullReadme.includes(`| \`${option}\` |`));
if (undocumented.length > 0) {
  console.error(`the README's Options table lacks: ${undocumented.join(", ")}`);
  process.exit(1);
}
console.log(`readme ok: ${new Set(relative).size} relative links, all in the tarball; ${anchors.length} anchors; ${options.length} options in the table`);
