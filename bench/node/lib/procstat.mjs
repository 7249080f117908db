// Process figures from /proc, as bench/harness/procstat.py reads them: CPU seconds
// (utime + stime of /proc/<pid>/stat, all threads), RSS, the whole machine's busy time,
// and the CPU of a process tree (a PostgreSQL postmaster and its backends).

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we know of). */
export const TICKS = (() => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the command name (the state is [0]); throws if gone. */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

const cpuOf = (fields) => (Number(fields[11]) + Number(fields[12])) / TICKS;

/** CPU seconds and RSS (kB) of `pid` now. Throws an Error naming the pid if it is gone. */
export function sample(pid) {
  let fields, status;
  try {
    fields = statFields(pid);
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    throw new Error(`no process ${pid}: is the pid right?`);
  }
  const rss = /^VmRSS:\s+(\d+)/m.exec(status);
  return { pid, cpu: cpuOf(fields), rssKb: rss ? Number(rss[1]) : 0 };
}

/** CPU seconds of `root` and every live descendant. Throws if `root` is gone. */
export function treeCpu(root) {
  const parent = new Map();
  const cpu = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = statFields(name);
      parent.set(Number(name), Number(fields[1]));
      cpu.set(Number(name), cpuOf(fields));
    } catch {
      // exited meanwhile
    }
  }
  if (!cpu.has(root)) throw new Error(`no process ${root}: is the pid right?`);
  const children = new Map();
  for (const [pid, up] of parent) {
    if (!children.has(up)) children.set(up, []);
    children.get(up).push(pid);
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    total += cpu.get(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** CPU seconds all cores spent busy since boot (not idle, not waiting for I/O). */
export function machineBusy() {
  const first = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  const fields = first.trim().split(/\s+/).slice(1, 9).map(Number);
  // guest time is already counted in user time: only the first 8 fields.
  const total = fields.reduce((a, b) => a + b, 0);
  return (total - fields[3] - fields[4]) / TICKS;
}

/** This process's own CPU seconds (user + system) so far. */
export function ownCpu() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** This process's own system (kernel) CPU seconds so far. */
export function ownSystemCpu() {
  return process.cpuUsage().system / 1e6;
}

/** Seconds on one monotonic clock (process.hrtime.bigint), as a float. */
export const now = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * A snapshot of the server pids, the database trees, the machine, and ourselves; two of
 * them make a span (see `span`). Throws if a pid is gone.
 */
export function snapshot(serverPids, dbPids) {
  return {
    at: now(),
    machine: machineBusy(),
    own: ownCpu(),
    ownSystem: ownSystemCpu(),
    servers: serverPids.map(sample),
    db: dbPids.reduce((sum, pid) => sum + treeCpu(pid), 0),
  };
}

/** What happened between two snapshots of the same pids. */
export function span(before, after) {
  const wall = Math.max(after.at - before.at, 1e-9);
  const byPid = {};
  let server = 0;
  after.servers.forEach((s, i) => {
    const used = s.cpu - before.servers[i].cpu;
    byPid[String(s.pid)] = round(used, 3);
    server += used;
  });
  return {
    wall,
    server,
    byPid,
    db: after.db - before.db,
    own: after.own - before.own,
    ownSystem: after.ownSystem - before.ownSystem,
    machine: (after.machine - before.machine) / wall,
    rssKb: Object.fromEntries(after.servers.map((s) => [String(s.pid), s.rssKb])),
    rssGrowthKb: after.servers.reduce((a, s, i) => a + s.rssKb - before.servers[i].rssKb, 0),
  };
}

export function round(value, digits) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
