/**
 * `podrun exec` stdin and terminals, against a real pod (podrun up -d, busybox from the test
 * registry): without -i the command's stdin is /dev/null and podrun never reads its own stdin;
 * -i passes it through; -t gives the command a pty of the container's /dev/pts, checked under a
 * real pty (python3 opens it with a window size and is the session's controlling terminal);
 * -it copies the window size, follows SIGWINCH and relays keystrokes; exit codes are the command's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, randomName, startPodEnv, TIME_SCALE, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let pod: string;
let global: string[];

beforeAll(async () => {
  e = await startPodEnv();
  pod = randomName();
  const file = e.manifest(
    'pod.yaml',
    `apiVersion: v1
kind: Pod
metadata:
  name: ${pod}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ${e.busybox}
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
`,
  );
  const r = e.podrun(['up', '-d', file]);
  if (r.status !== 0) throw new Error(`podrun up -d failed: ${r.stderr}`);
  global = ['--root', e.root, '--run-root', e.runRoot, '--log-root', e.logRoot, '--registry-config', `${e.dir}/registries.yaml`];
}, 120_000);

afterAll(async () => {
  if (e && pod) e.podrun(['down', pod]);
  await e?.cleanup();
});

const execArgs = (flags: string[], cmd: string[]) => [...global, 'exec', ...flags, pod, '--', ...cmd];

/** podrun exec with a stdin pipe that holds `data` and is never closed by the writer. */
function execWithOpenStdin(flags: string[], cmd: string[], data: string): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const c = spawn(BIN, execArgs(flags, cmd), { env: e.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.stdin.on('error', () => {});
    c.stdin.write(data);
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000 * TIME_SCALE);
    c.on('error', reject);
    c.on('close', (status) => {
      clearTimeout(timer);
      c.stdin.destroy();
      resolve({ status, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/**
 * Runs argv with a fresh pty (rows x cols) as its controlling terminal and stdin/stdout/stderr;
 * writes `input` chunks (after `waitFor` appears in the output, when given), optionally resizes
 * the pty to `resize` once `resizeAfter` appears, and returns the terminal output and exit status.
 */
const PTY_RUNNER = String.raw`
import fcntl, json, os, select, struct, subprocess, sys, termios, time
spec = json.loads(sys.argv[1])
m, s = os.openpty()
def size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
size(s, spec['rows'], spec['cols'])
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(spec['argv'], stdin=s, stdout=s, stderr=s, start_new_session=True, preexec_fn=ctty, env=spec['env'])
os.close(s)
out = b''
steps = spec['steps']
deadline = time.time() + spec['timeout']
while time.time() < deadline:
    while steps and steps[0]['after'].encode() in out:
        st = steps.pop(0)
        if 'write' in st: os.write(m, st['write'].encode())
        if 'resize' in st: size(m, st['resize'][0], st['resize'][1])
    r, _, _ = select.select([m], [], [], 0.2)
    if r:
        try:
            d = os.read(m, 65536)
        except OSError:
            break
        if not d: break
        out += d
    elif p.poll() is not None:
        break
try:
    code = p.wait(timeout=max(1, deadline - time.time()))
except subprocess.TimeoutExpired:
    p.kill(); code = -9
sys.stdout.write(json.dumps({'code': code, 'out': out.decode('utf8', 'replace')}))
`;

interface PtyStep {
  after: string;
  write?: string;
  resize?: [number, number];
}
function underPty(flags: string[], cmd: string[], o: { rows?: number; cols?: number; steps?: PtyStep[] } = {}): { code: number; out: string } {
  const spec = { argv: [BIN, ...execArgs(flags, cmd)], env: e.env, rows: o.rows ?? 24, cols: o.cols ?? 80, steps: o.steps ?? [], timeout: 20 * TIME_SCALE };
  const r = spawnSync('python3', ['-c', PTY_RUNNER, JSON.stringify(spec)], { encoding: 'utf8', timeout: 30_000 * TIME_SCALE });
  if (r.status !== 0) throw new Error(`pty runner failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('podrun exec stdin', () => {
  it('without -i the command gets EOF at once and podrun leaves its stdin unread', async () => {
    const r = await execWithOpenStdin([], ['cat'], 'data that must stay in the pipe\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.ms).toBeLessThan(10_000 * TIME_SCALE);
    // The data is still there for whoever reads next.
    const sh = spawnSync('sh', ['-c', `"$0" "$@"; echo "after: $(cat)"`, BIN, ...execArgs([], ['cat'])], { env: e.env, input: 'kept\n', encoding: 'utf8', timeout: 30_000 });
    expect(sh.stdout).toBe('after: kept\n');
  });

  it('without -i the command sees /dev/null as stdin', () => {
    const r = e.podrun(['exec', pod, '--', 'sh', '-c', 'readlink /proc/self/fd/0; test -t 0 && echo tty || echo notty'], { input: 'x' });
    expect(r.stdout).toBe('/dev/null\nnotty\n');
  });

  it('-i passes stdin through cat', () => {
    const data = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join('');
    const r = e.podrun(['exec', '-i', pod, '--', 'cat'], { input: data });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(data);
  });

  it('exit codes are the command\'s, with and without -i', () => {
    expect(e.podrun(['exec', pod, '--', 'sh', '-c', 'exit 7']).status).toBe(7);
    expect(e.podrun(['exec', '-i', pod, '--', 'sh', '-c', 'read x; exit $x'], { input: '42\n' }).status).toBe(42);
    expect(e.podrun(['exec', pod, '--', 'sh', '-c', 'kill -TERM $$']).status).toBe(128 + 15);
  });
});

describe('podrun exec -t under a real terminal', () => {
  it('-t: tty names a /dev/pts device of the container; without -t stdin is not a terminal', () => {
    const t = underPty(['-t'], ['tty']);
    expect(t.code).toBe(0);
    expect(t.out.trim()).toMatch(/^\/dev\/pts\/\d+$/);
    const it2 = underPty(['-it'], ['sh', '-c', 'test -t 0 && test -t 1 && echo both-tty']);
    expect(it2.out).toContain('both-tty');
    const no = underPty([], ['sh', '-c', 'test -t 0; echo "stdin-tty=$?"']);
    expect(no.code).toBe(0);
    expect(no.out.trim()).toBe('stdin-tty=1');
    const noI = underPty(['-i'], ['sh', '-c', 'test -t 0; echo "stdin-tty=$?"']);
    expect(noI.out.trim()).toBe('stdin-tty=1');
  });

  it('without -t the command never gets the caller\'s terminal: stdio are pipes, /dev/tty does not open', () => {
    const r = underPty(['-i'], ['sh', '-c', 'for f in 0 1 2; do test -t $f && echo "fd$f-is-tty"; done; (echo x > /dev/tty) 2>/dev/null || echo no-dev-tty; echo done'], {
      steps: [{ after: 'done', write: '\x04' }],
    });
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('-is-tty');
    expect(r.out).toContain('no-dev-tty');
  });

  it('-i relays a terminal\'s lines and its ^D', () => {
    const r = underPty(['-i'], ['sh', '-c', 'echo ready; cat; echo cat-done'], {
      steps: [
        { after: 'ready', write: 'typed line\r' },
        { after: 'typed line\r\n', write: '\x04' },
      ],
    });
    expect(r.code).toBe(0);
    expect(r.out.match(/typed line/g)?.length).toBe(2); // the local echo and cat's copy
    expect(r.out).toContain('cat-done');
  });

  it('-i with a terminal: podrun exits with the command even when nothing was typed', () => {
    const t0 = Date.now();
    const r = underPty(['-i'], ['echo', 'quick']);
    if (process.env.PODRUN_TEST_TIMING) {
      const t1 = Date.now();
      underPty([], ['echo', 'quick']);
      console.log(`exec -i under a pty: ${t1 - t0} ms; without -i: ${Date.now() - t1} ms`);
    }
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('quick');
    expect(Date.now() - t0).toBeLessThan(10_000 * TIME_SCALE);
  });

  it('Ctrl-C without -t interrupts the command (forwarded through the shim)', () => {
    const r = underPty([], ['sh', '-c', "trap 'echo got-INT; exit 9' INT; echo ready; while true; do sleep 0.1; done"], {
      steps: [{ after: 'ready', write: '\x03' }],
    });
    expect(r.out).toContain('got-INT');
    expect(r.code).toBe(9);
  });

  it('-t: exit codes are the command\'s', () => {
    expect(underPty(['-t'], ['sh', '-c', 'exit 5']).code).toBe(5);
    expect(underPty(['-it'], ['sh', '-c', 'exit 3']).code).toBe(3);
  });

  it('-it: keystrokes reach the command; ^D ends its input', () => {
    const r = underPty(['-it'], ['sh', '-c', 'echo ready; read line; echo "got:$line"; cat; echo cat-done'], {
      steps: [
        { after: 'ready', write: 'hello pty\r' },
        { after: 'got:hello pty', write: 'more\r\x04' },
      ],
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('got:hello pty');
    expect(r.out).toContain('cat-done');
  });

  it('-it copies the window size and follows SIGWINCH', () => {
    const r = underPty(['-it'], ['sh', '-c', 'stty size; echo first-done; read x; sleep 0.2; stty size'], {
      rows: 33,
      cols: 101,
      steps: [
        { after: 'first-done', resize: [40, 120] },
        { after: 'first-done', write: '\r' },
      ],
    });
    expect(r.code).toBe(0);
    const sizes = r.out.split(/\r?\n/).filter((l) => /^\d+ \d+$/.test(l.trim())).map((l) => l.trim());
    expect(sizes).toEqual(['33 101', '40 120']);
  });

  it('-t without -i: the window size comes from the terminal on stdout', () => {
    const r = underPty(['-t'], ['stty', 'size'], { rows: 27, cols: 93 });
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('27 93');
  });

  it('-t without -i: the command has a terminal whose input is at end of file, and podrun reads nothing', async () => {
    const t = underPty(['-t'], ['sh', '-c', 'cat; echo "cat-ended"; tty']);
    expect(t.code).toBe(0);
    expect(t.out).toContain('cat-ended');
    // No terminal on podrun's stdin (a pipe held open): -t still allocates one, as podman does.
    const r = await execWithOpenStdin(['-t'], ['sh', '-c', 'cat; tty'], 'unread\n');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\/dev\/pts\/\d+$/);
    expect(r.stderr).toBe('');
  });

  it('-it with a pipe on stdin feeds it into the terminal (echoed, as podman does)', () => {
    const r = e.podrun(['exec', '-it', pod, '--', 'sh', '-c', 'read x; echo "got:$x"'], { input: 'piped\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('got:piped');
  });
});
