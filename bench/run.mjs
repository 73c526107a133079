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
const results = {};
for (const [title, file] of parts) {
  if (only.length && !only.some((o) => file.includes(o))) continue;
  if (!existsSync(new URL(file, import.meta.url))) {
    console.log(`\n## ${title}: ${file} is missing, skipped`);
    continue;
  }
  console.log(`\n## ${title}`);
  try {
    const mod = await import(file);
    results[file] = await mod.run();
  } catch (err) {
    failed++;
    console.log(`bench ${file} failed: ${err?.stack ?? err}`);
  }
}
// Issue 4: the share of `podrun up` spent in network setup. bench/pod.mjs gives pods a loopback-only
// network unless PODRUN_BENCH_CNI=1 (the default network writes /etc/podrun/cni and a podrun0
// bridge), so the share is taken against the warm `up -d` plus one CNI setup.
const pod = results['./pod.mjs'];
const net = results['./network.mjs'];
if (pod?.podrunUp && net?.setupMs) {
  const setup = net.setupMs / 1000;
  const withNet = process.env.PODRUN_BENCH_CNI ? pod.podrunUp : pod.podrunUp + setup;
  console.log(`\n## network share of podrun up -d`);
  console.log(`  CNI setup ${setup.toFixed(3)} s of up -d with networking ${withNet.toFixed(3)} s = ${((100 * setup) / withNet).toFixed(0)}%`);
  if (pod.podmanUp) console.log(`  podrun up -d with networking vs podman kube play (which also creates a pod network): ${(withNet / pod.podmanUp).toFixed(2)}x`);
}
process.exitCode = failed ? 1 : 0;
