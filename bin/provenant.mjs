#!/usr/bin/env node
// Entry point of the `provenant` command. It runs the compiled JavaScript (dist/, `npm run build`;
// the container image ships only that) when it is there and no source is newer than it; otherwise
// (a fresh clone, or sources edited since the last build) the TypeScript sources through tsx's
// loader, so a stale build never shadows an edit.
import { readdirSync, statSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const sources = new URL('../provider/src/', import.meta.url);

/** Newest modification time (ms) of the files under `dir`, or undefined when there is no `dir`. */
function newestMs(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return undefined;
  }
  let newest = 0;
  for (const e of entries) {
    if (e.isFile()) newest = Math.max(newest, statSync(`${e.parentPath}/${e.name}`).mtimeMs);
  }
  return newest;
}

function useCompiled() {
  const built = statSync(compiled, { throwIfNoEntry: false });
  if (built === undefined) return false;
  const edited = newestMs(sources);
  return edited === undefined || edited <= built.mtimeMs;
}

let main;
if (useCompiled()) ({ main } = await import(compiled.href));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../provider/src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
