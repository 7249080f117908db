// End to end: the load generator against the storage-less router, on small sizes. Each
// scenario must account for every message (nothing lost, no error) and report the
// figures the README documents. Run with `npm test` in bench/node.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'hubbub-node-bench-'));
const env = { ...process.env, HUBBUB_BENCH_TOKEN_CACHE: join(scratch, 'tokens.json') };
let router;
let url;

/** Resolves with the router's URL once it says it listens; rejects after 10 s or on exit. */
function started(child) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`router not listening after 10 s: ${seen}`)), 10_000);
    child.stderr.on('data', (chunk) => {
      seen += chunk;
      const found = /listening on (http:\/\/\S+)/.exec(seen);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`router exited ${code}: ${seen}`)));
  });
}

/** Run load.mjs with `args` (plus --json): resolves with its one JSON object. */
function load(...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['load.mjs', ...args, '--url', url, '--server-pid', String(router.pid), '--json', '--settle', '0.2'], { cwd: here, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load.mjs ${args[0]} exited ${code}: ${err}`));
      const lines = out.trim().split('\n');
      assert.equal(lines.length, 1, 'with --json, stdout is exactly one JSON object');
      resolve(JSON.parse(lines[0]));
    });
  });
}

before(async () => {
  router = spawn(process.execPath, ['router.mjs', '--port', '0'], { cwd: here, stdio: ['ignore', 'ignore', 'pipe'] });
  url = await started(router);
});

after(() => {
  router?.kill();
  rmSync(scratch, { recursive: true, force: true });
});

test('direct: every message acked and delivered once, both ways too', async () => {
  for (const extra of [[], ['--both-ways']]) {
    const r = await load('direct', '--pairs', '3', '--window', '4', '--messages', '30', ...extra);
    const senders = extra.length ? 6 : 3;
    assert.equal(r['pairs ready'], 3);
    assert.equal(r.sent, senders * 30);
    assert.equal(r.acked, senders * 30);
    assert.equal(r.delivered, senders * 30);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicates, 0);
    assert.deepEqual(r.errors, {});
    assert.equal(r['timed out'], false);
    assert.equal(typeof r['server cpu us per message'], 'number');
    assert.ok(r['latency ms'].p50 <= r['latency ms'].p99);
  }
});

test('direct: users are reused, not signed up again', async () => {
  // The router refuses a second signup of a name with 409; the login still succeeds.
  const again = await load('direct', '--pairs', '3', '--window', '2', '--messages', '5');
  assert.equal(again.delivered, 15);
});

test('group: each acked message reaches every member, the sender included', async () => {
  const r = await load('group', '--members', '6', '--senders', '2', '--messages', '10', '--window', '3');
  assert.equal(r['members online'], 6);
  assert.equal(r.acked, 20);
  assert.equal(r.deliveries, 20 * 6);
  assert.equal(r['missing deliveries'], 0);
  assert.equal(r['duplicate deliveries'], 0);
  assert.deepEqual(r.errors, {});
});

test('pingpong: every iteration measured, message and ping alike', async () => {
  const m = await load('pingpong', '--iterations', '40', '--warmup', '5');
  assert.equal(m['iterations measured'], 40);
  assert.equal(m['timed out'], false);
  assert.ok(m['send to receipt ms'].max >= m['send to receipt ms'].p50);
  const p = await load('pingpong', '--iterations', '40', '--warmup', '5', '--frame', 'ping');
  assert.equal(p['iterations measured'], 40);
});

test('a wrong server pid fails before any setup', async () => {
  await assert.rejects(
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['load.mjs', 'direct', '--url', url, '--server-pid', '999999999'], { cwd: here, env });
      let err = '';
      child.stderr.on('data', (c) => (err += c));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(err))));
    }),
    /no process 999999999/,
  );
});
