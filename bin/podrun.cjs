// podrun's entry in JavaScript, started by bin/podrun (which sets Node's options; see there).
//
// `up -d FILE` and `down FILE` with a supervisor running go through dist/cli/fast.cjs, which loads
// no module of ours but itself: Node's start-up is most of such a call already. Everything else
// (and whatever fast.cjs declines) runs dist/cli/main.js. This file is CommonJS (.cjs): the ES
// module loader (about 10 ms of builtins: fs/promises, readline, streams) starts only when main.js
// is needed.
'use strict';
const argv = process.argv.slice(2);
Promise.resolve(require('../dist/cli/fast.cjs'))
  .then((fast) => fast.fastMain(argv))
  .then(async (code) => {
    if (code !== undefined) return code;
    const m = await import('../dist/cli/main.js');
    return m.main(argv);
  })
  .then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err) => {
      console.error(err?.stack ?? String(err));
      process.exitCode = 70;
    },
  );
