#!/usr/bin/env node
// An independent load generator for hubbub, in Node.js with `ws`: the scenarios of
// bench/direct.py and bench/group.py (same users, same group, same figures), plus a
// ping-pong. See README.md beside this file.
//
//   node load.mjs direct   --url http://127.0.0.1:8300 --pairs 50 --window 8 --messages 400 --server-pid PID
//   node load.mjs group    --url http://127.0.0.1:8300 --members 200 --senders 10 --messages 50 --window 5 --server-pid PID
//   node load.mjs pingpong --url http://127.0.0.1:8300 --iterations 2000 --server-pid PID

import { parseArgs } from 'node:util';
import { closeAll, openReady, settle, watchCloses } from './lib/conn.mjs';
import { DirectLoad } from './lib/direct.mjs';
import { GroupLoad } from './lib/group.mjs';
import { PingPong } from './lib/pingpong.mjs';
import { round, snapshot, span } from './lib/procstat.mjs';
import { costFigures, emit, latencyMs, sumCounts } from './lib/report.mjs';
import { SetupError, chatUrl, ensureGroup, ensureUsers, newNonce } from './lib/setup.mjs';

const COMMON = {
  url: { type: 'string', multiple: true },
  'server-pid': { type: 'string', multiple: true, default: [] },
  'db-pid': { type: 'string', multiple: true, default: [] },
  'user-prefix': { type: 'string', default: 'bench' },
  'setup-concurrency': { type: 'string', default: '8' },
  'connect-timeout': { type: 'string', default: '120' },
  settle: { type: 'string', default: '1.0' },
  'run-timeout': { type: 'string', default: '300' },
  'drain-timeout': { type: 'string', default: '5' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

const SCENARIOS = {
  direct: {
    about: 'P pairs: user 2i sends to user 2i+1 (--both-ways: and back), each sender keeping W unacked',
    options: {
      pairs: { type: 'string', default: '50' },
      window: { type: 'string', default: '20' },
      messages: { type: 'string', default: '400' },
      'both-ways': { type: 'boolean', default: false },
    },
    run: runDirect,
  },
  group: {
    about: 'one group of K members all online; the first S members send, each keeping W unacked',
    options: {
      members: { type: 'string', default: '500' },
      senders: { type: 'string', default: '10' },
      messages: { type: 'string', default: '100' },
      window: { type: 'string', default: '5' },
      'group-name': { type: 'string' },
    },
    run: runGroup,
  },
  pingpong: {
    about: 'one pair, one message in flight (--frame ping: ping/pong on one connection)',
    options: {
      iterations: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '50' },
      frame: { type: 'string', default: 'message' },
    },
    run: runPingPong,
  },
};

function usage(code) {
  const lines = ['usage: node load.mjs SCENARIO --url http://HOST:PORT [--server-pid PID] [options]', ''];
  for (const [name, s] of Object.entries(SCENARIOS)) {
    lines.push(`  ${name}: ${s.about}`);
    for (const [opt, o] of Object.entries(s.options)) lines.push(`      --${opt}${o.type === 'string' ? ` (${o.default ?? 'optional'})` : ''}`);
  }
  lines.push('', '  common:');
  for (const [opt, o] of Object.entries(COMMON)) lines.push(`      --${opt}${o.type === 'string' && !o.multiple ? ` (${o.default})` : o.multiple ? ' (repeatable)' : ''}`);
  (code ? process.stderr : process.stdout).write(lines.join('\n') + '\n');
  process.exit(code);
}

function parse(argv) {
  const scenario = SCENARIOS[argv[0]];
  if (!scenario) usage(argv[0] === '-h' || argv[0] === '--help' ? 0 : 2);
  let values;
  try {
    ({ values } = parseArgs({ args: argv.slice(1), options: { ...COMMON, ...scenario.options }, strict: true }));
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    usage(2);
  }
  if (values.help) usage(0);
  if (!values.url) {
    process.stderr.write('--url is required\n');
    usage(2);
  }
  const args = { scenario: argv[0] };
  for (const [key, value] of Object.entries(values)) {
    const name = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const numeric = typeof value === 'string' && /^[\d.]+$/.test(value) && key !== 'group-name' && key !== 'user-prefix';
    args[name] = numeric ? Number(value) : value;
  }
  args.url = args.url.flatMap((u) => u.split(',')).map((u) => u.trim()).filter(Boolean);
  args.serverPid = args.serverPid.map(Number);
  args.dbPid = args.dbPid.map(Number);
  return { args, scenario };
}

/** Connect `targets` and settle; only connections still open at the start are kept. */
async function connect(args, targets) {
  const opened = await openReady(targets, { timeout: args.connectTimeout });
  await settle(opened.conns, args.settle, args.connectTimeout, opened.early);
  // A connection the server closed meanwhile is left out (its pair or sender with it).
  const alive = opened.conns.filter((c) => c.isOpen);
  const lost = opened.conns.length - alive.length;
  if (lost) opened.failures['closed before the start'] = lost;
  opened.conns = alive;
  return opened;
}

/** Sample, run `load`, sample: the measured span starts with everyone ready and quiet. */
async function measured(args, load) {
  const before = snapshot(args.serverPid, args.dbPid);
  const finished = await load.run();
  const after = snapshot(args.serverPid, args.dbPid);
  return { finished, s: span(before, after) };
}

function plan(args, nonce) {
  return {
    nonce,
    window: args.window,
    messages: args.messages,
    runTimeout: args.runTimeout,
    drainTimeout: args.drainTimeout,
  };
}

async function runDirect(args) {
  const users = await ensureUsers(args.url[0], 2 * args.pairs, { prefix: args.userPrefix, concurrency: args.setupConcurrency });
  const targets = users.map((u, k) => ({ url: chatUrl(args.url[k % args.url.length], u.token), key: k }));
  const opened = await connect(args, targets);
  const byIndex = new Map(opened.conns.map((c) => [c.key, c]));
  const pairs = [];
  for (let i = 0; i < args.pairs; i++) {
    const sender = byIndex.get(2 * i);
    const receiver = byIndex.get(2 * i + 1);
    if (sender && receiver) pairs.push({ sender, receiver, senderId: users[2 * i].id, receiverId: users[2 * i + 1].id });
  }
  const load = new DirectLoad(plan(args, newNonce()), pairs, args.bothWays);
  const senderOf = new Map(load.senders.map((s) => [s.conn, s]));
  watchCloses(opened.conns, (conn, reason) => load.onClosed(senderOf.get(conn) ?? null, reason));
  const { finished, s } = await measured(args, load);
  const counted = load.counted();
  const elapsed = Math.max(load.lastReceive - load.startAt, 1e-9);
  const figures = {
    nodes: args.url.length,
    'pairs ready': pairs.length,
    directions: args.bothWays ? 'both ways' : 'one way (2i -> 2i+1)',
    senders: load.senders.length,
    window: args.window,
    'messages per sender': args.messages,
    'setup failures': opened.failures,
    'frames before the start': opened.early,
    ...counted,
    'timed out': !finished,
    'elapsed to last delivery (s)': round(elapsed, 3),
    'delivered msg/s': round(counted.delivered / elapsed, 1),
    'latency ms': latencyMs(load.latencies),
    ...costFigures(s, counted.delivered, ['delivered', 'message'], args),
  };
  await closeAll(opened.conns);
  return ['direct messages (node)', figures];
}

async function runGroup(args) {
  if (args.senders > args.members) throw new SetupError('--senders cannot exceed --members: senders are members');
  const users = await ensureUsers(args.url[0], args.members, { prefix: args.userPrefix, concurrency: args.setupConcurrency });
  const name = args.groupName ?? `${args.userPrefix}-group-${args.members}`;
  const groupId = await ensureGroup(args.url[0], name, users[0], users, { concurrency: args.setupConcurrency });
  const targets = users.map((u, k) => ({ url: chatUrl(args.url[k % args.url.length], u.token), key: k }));
  const opened = await connect(args, targets);
  if (opened.conns.length === 0) throw new SetupError(`no member came online: ${JSON.stringify(opened.failures)}`);
  const load = new GroupLoad(plan(args, newNonce()), groupId, opened.conns, args.senders);
  watchCloses(opened.conns, (conn, reason) => load.onClosed(load.members.find((m) => m.conn === conn)?.sender ?? null, reason));
  const { finished, s } = await measured(args, load);
  const counted = load.counted();
  const elapsed = Math.max(load.lastReceive - load.startAt, 1e-9);
  const figures = {
    nodes: args.url.length,
    group: `${name} (id ${groupId})`,
    'members online': opened.conns.length,
    'senders ready': load.senders.length,
    window: args.window,
    'messages per sender': args.messages,
    'setup failures': opened.failures,
    'frames before ready': opened.early,
    ...counted,
    'timed out': !finished,
    'elapsed to last delivery (s)': round(elapsed, 3),
    'acked msg/s': round(counted.acked / elapsed, 1),
    'deliveries/s': round(counted.deliveries / elapsed, 1),
    'latency ms': latencyMs(load.latencies),
    ...costFigures(s, counted.deliveries, ['deliveries', 'delivery'], args),
  };
  await closeAll(opened.conns);
  if (figures.errors['rate limit exceeded']) {
    process.stderr.write('warning: the node refused group messages over its rate limit; start it with HUBBUB_GROUP_RATE_LIMIT=1000000000\n');
  }
  return ['group messages (node)', figures];
}

async function runPingPong(args) {
  if (args.frame !== 'message' && args.frame !== 'ping') throw new SetupError('--frame is message or ping');
  const users = await ensureUsers(args.url[0], 2, { prefix: args.userPrefix, concurrency: args.setupConcurrency });
  const targets = users.map((u, k) => ({ url: chatUrl(args.url[k % args.url.length], u.token), key: k }));
  const opened = await connect(args, targets);
  if (opened.conns.length !== 2) throw new SetupError(`the pair did not come online: ${JSON.stringify(opened.failures)}`);
  const [a, b] = opened.conns;
  const game = new PingPong(
    { nonce: newNonce(), iterations: args.iterations, warmup: args.warmup, frame: args.frame, runTimeout: args.runTimeout },
    a, users[0].id, b, users[1].id,
  );
  const { finished, s } = await measured(args, game);
  const done = game.receipt.length;
  const figures = {
    frame: args.frame,
    'iterations measured': done,
    warmup: args.warmup,
    'frames before the start': opened.early,
    errors: game.errors,
    'other frames': game.other,
    'timed out': !finished,
    [args.frame === 'ping' ? 'ping to pong ms' : 'send to receipt ms']: latencyMs(game.receipt),
    ...(args.frame === 'message' ? { 'send to ack ms': latencyMs(game.ack) } : {}),
    'round trips/s': round(done / s.wall, 1),
    ...costFigures(s, done, ['iterations', 'iteration'], args),
  };
  await closeAll(opened.conns);
  return [`ping-pong (node, ${args.frame})`, figures];
}

async function main() {
  const { args, scenario } = parse(process.argv.slice(2));
  try {
    snapshot(args.serverPid, args.dbPid); // fail now on a wrong pid, not after the setup
    const [title, figures] = await scenario.run(args);
    emit(title, figures, { asJson: args.json });
  } catch (error) {
    if (!(error instanceof SetupError) && !/^no process/.test(error.message)) throw error;
    process.stderr.write(`setup failed: ${error.message}\n`);
    process.exitCode = 1;
  }
}

await main();
// Connections are closed; stray handles (fetch's keep-alive pool) must not hold us.
process.exit(process.exitCode ?? 0);
