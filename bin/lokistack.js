#!/usr/bin/env node
// The `lokistack` command. Runs the compiled CLI (dist/, from `npm run build`)
// when it is there and no older than the sources; otherwise the TypeScript
// itself through tsx's loader, so a checkout works without a build step and a
// stale build is never run by mistake. The image runs `node dist/src/cli.js`
// directly and needs neither this file nor tsx.
import { existsSync, readdirSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);
const compiled = new URL("dist/src/cli.js", root);
const sources = new URL("src/", root);

/** The newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir);
    latest = Math.max(latest, entry.isDirectory() ? newest(url) : statSync(url).mtimeMs);
  }
  return latest;
}

function useCompiled() {
  if (!existsSync(compiled)) return false;
  if (!existsSync(sources)) return true;
  return statSync(compiled).mtimeMs >= newest(sources);
}

if (useCompiled()) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
