#!/usr/bin/env node
// `npm run bench`: podrun beside its peers on this machine, in one run, printed as ratios.
// Each part lives in its own file and can also run alone (node bench/pull.mjs, …).
// Not a test: nothing here asserts a time.
import { existsSync } from 'node:fs';

const parts = [
  ['pull + unpack (issue 2)', './pull.mjs'],
  ['pod up/down and memory (issue 3)', './pod.mjs'],
  ['network setup (issue 4)', './network.mjs'],
];
const only = process.argv.slice(2);
let failed = 0;
for (const [title, file] of parts) {
  if (only.length && !only.some((o) => file.includes(o))) continue;
  if (!existsSync(new URL(file, import.meta.url))) {
    console.log(`\n## ${title}: ${file} is missing, skipped`);
    continue;
  }
  console.log(`\n## ${title}`);
  try {
    const mod = await import(file);
    await mod.run();
  } catch (err) {
    failed++;
    console.log(`bench ${file} failed: ${err?.stack ?? err}`);
  }
}
process.exitCode = failed ? 1 : 0;
