// Watches the process that spawned it through its stdin pipe. That process writes one JSON
// line per server process it starts, and one per Docker label its containers carry
// ({"op":"add"|"remove","key":…,"resource":…}). When the pipe closes (the owner exited normally,
// crashed, or was killed by SIGINT, SIGTERM or SIGKILL), every process still registered is
// killed and every container with a registered label removed. The owner starts this script
// detached, so a Ctrl-C on the terminal does not reach it.
//
// argv[2]: optional directory; a file named after this pid exists there while servers are
// registered, so the run's global teardown can wait until orphans are gone.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const markerDir = process.argv[2] ?? "";
const marker = markerDir === "" ? "" : join(markerDir, `reaper-${process.pid}`);
const resources = new Map();

function updateMarker() {
  if (marker === "") return;
  try {
    if (resources.size > 0) writeFileSync(marker, "");
    else rmSync(marker, { force: true });
  } catch {
    // The run directory is gone: nobody is waiting any more.
  }
}

function startTimeOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

// Connected ahead of time once containers are registered, so removal starts at once on exit.
let docker;
function dockerApi() {
  docker ??= import("testcontainers")
    .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
    .then((client) => client.container.dockerode);
  return docker;
}

let reaping = false;
async function reap() {
  if (reaping) return;
  reaping = true;
  // Never linger: whatever cannot be removed within a minute is reported by the next run's ps.
  setTimeout(() => process.exit(1), 60_000).unref();
  const labels = [];
  for (const resource of resources.values()) {
    if (resource.type === "pid") {
      // Only the process that was registered, not a later one that got its pid.
      if (resource.startTime !== undefined && startTimeOf(resource.pid) !== resource.startTime) continue;
      try {
        process.kill(resource.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    } else if (resource.type === "label") {
      labels.push(resource.label);
    }
  }
  if (labels.length > 0) {
    try {
      const api = await dockerApi();
      // Docker ANDs label filters: list by key, then match the values here.
      const wanted = new Set(labels);
      const keys = [...new Set(labels.map((label) => label.split("=")[0]))];
      const containers = (await api.listContainers({ all: true, filters: { label: keys } })).filter((info) =>
        Object.entries(info.Labels ?? {}).some(([key, value]) => wanted.has(`${key}=${value}`)),
      );
      await Promise.all(
        containers.map((info) =>
          api
            .getContainer(info.Id)
            .remove({ force: true, v: true })
            .catch(() => undefined),
        ),
      );
    } catch (error) {
      console.error(`test-services reaper: could not remove containers labelled ${labels.join(" ")}:`, error);
    }
  }
  resources.clear();
  updateMarker();
  process.exit(0);
}

process.on("SIGINT", () => {});
process.on("SIGHUP", () => {});
process.on("SIGTERM", () => void reap());

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  if (message.op === "add") {
    resources.set(message.key, message.resource);
    if (message.resource.type === "label") dockerApi().catch(() => undefined);
  }
  else if (message.op === "remove") resources.delete(message.key);
  updateMarker();
});
lines.on("close", () => void reap());
