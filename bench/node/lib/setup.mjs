// Bench users and the bench group, set up exactly as bench/harness/users.py and
// groups.py do, so that either tool reuses what the other made: users
// `<prefix>_0 .. <prefix>_<n-1>` with password `bench-password` and email
// `<name>@bench.example.com`; the group `<prefix>-group-<K>` owned by user 0. Access
// tokens are cached in the same file as the Python harness (os.tmpdir()/
// hubbub-bench-tokens.json, keyed by the base URL as given): a cached token still
// accepted by GET /users/me (cheap) spares a login, which costs the server an argon2 hash.

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PASSWORD = 'bench-password';
/** The Python harness's cache file; HUBBUB_BENCH_TOKEN_CACHE moves it (the tests do). */
export const TOKEN_CACHE = process.env.HUBBUB_BENCH_TOKEN_CACHE || join(tmpdir(), 'hubbub-bench-tokens.json');
/** A cached token is used only if it stays valid at least this long (s). */
const TOKEN_MARGIN = 300;

export class SetupError extends Error {}

/** The `exp` claim of a JWT-shaped token, read without verifying (0 if unreadable). */
function expiresAt(token) {
  try {
    const payload = token.split('.')[1];
    return Number(JSON.parse(Buffer.from(payload, 'base64url').toString()).exp) || 0;
  } catch {
    return 0;
  }
}

function readCacheFile() {
  try {
    return JSON.parse(readFileSync(TOKEN_CACHE, 'utf8'));
  } catch {
    return {};
  }
}

function loadCache(baseUrl) {
  const entries = readCacheFile()[baseUrl] ?? {};
  const fresh = new Map();
  const soon = Date.now() / 1000 + TOKEN_MARGIN;
  for (const [name, entry] of Object.entries(entries)) {
    if (expiresAt(entry.token) > soon) fresh.set(name, { id: entry.id, username: name, token: entry.token });
  }
  return fresh;
}

function saveCache(baseUrl, users) {
  const everything = readCacheFile();
  const entries = (everything[baseUrl] ??= {});
  for (const user of users) entries[user.username] = { id: user.id, token: user.token };
  // Written aside, then renamed: a concurrent reader sees the old file or the new one.
  const scratch = `${TOKEN_CACHE}.${process.pid}`;
  writeFileSync(scratch, JSON.stringify(everything));
  renameSync(scratch, TOKEN_CACHE);
}

/** A tiny HTTP client for the v1 endpoints the setup needs. */
export class Http {
  constructor(baseUrl, timeoutMs = 60_000) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
  }

  async call(method, path, { token, json, form, query } = {}) {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, String(v));
    const headers = {};
    let body;
    if (token) headers.authorization = `Bearer ${token}`;
    if (json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    let answer;
    try {
      answer = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new SetupError(`cannot reach ${this.base} (${method} ${path}): ${error.cause?.code ?? error.cause?.errors?.[0]?.code ?? error.cause?.message ?? error.message}; is the node running?`);
    }
    const text = await answer.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text for the error message
    }
    return { status: answer.status, body: parsed, text };
  }
}

/** Run `task(item)` for every item, at most `limit` at once; rejects on the first failure. */
export async function bounded(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

async function ensureUser(http, username, cached) {
  if (cached) {
    const me = await http.call('GET', '/users/me', { token: cached.token });
    if (me.status === 200 && me.body?.id === cached.id && me.body?.username === username) return cached;
  }
  const signup = await http.call('POST', '/auth/signup', {
    json: { username, email: `${username}@bench.example.com`, password: PASSWORD },
  });
  if (signup.status !== 201 && signup.status !== 409) {
    throw new SetupError(`signup of ${username} answered ${signup.status}: ${signup.text}`);
  }
  const login = await http.call('POST', '/auth/login', { form: { username, password: PASSWORD } });
  if (login.status !== 200) {
    throw new SetupError(
      `login of ${username} answered ${login.status}: a user of that name exists with another ` +
        'password? Use a fresh database or another --user-prefix.',
    );
  }
  const token = login.body.access_token;
  let id = signup.status === 201 ? signup.body.id : undefined;
  if (id === undefined) {
    const me = await http.call('GET', '/users/me', { token });
    if (me.status !== 200) throw new SetupError(`GET /users/me for ${username} answered ${me.status}`);
    id = me.body.id;
  }
  return { id, username, token };
}

/**
 * Users `<prefix>_0 .. <prefix>_<count-1>`, each with an access token valid for at least
 * TOKEN_MARGIN seconds: signed up if missing, else logged in (unless a cached token is
 * still accepted), `concurrency` at a time. Rejects with SetupError if any cannot be had.
 */
export async function ensureUsers(baseUrl, count, { prefix = 'bench', concurrency = 8 } = {}) {
  const http = new Http(baseUrl);
  const cache = loadCache(baseUrl);
  const names = Array.from({ length: count }, (_, i) => `${prefix}_${i}`);
  const users = await bounded(names, concurrency, (name) => ensureUser(http, name, cache.get(name)));
  saveCache(baseUrl, users);
  return users;
}

/**
 * The id of `owner`'s group called `name` (the lowest, if several; created if none), with
 * every user of `members` in it (the missing ones added, `concurrency` at a time).
 */
export async function ensureGroup(baseUrl, name, owner, members, { concurrency = 8 } = {}) {
  const http = new Http(baseUrl);
  const mine = await http.call('GET', '/groups/all', { token: owner.token });
  if (mine.status !== 200) throw new SetupError(`GET /groups/all answered ${mine.status}: ${mine.text}`);
  const ids = mine.body.filter((g) => g.name === name).map((g) => g.id);
  let groupId = ids.length ? Math.min(...ids) : null;
  if (groupId === null) {
    const made = await http.call('POST', '/groups/create-group', { token: owner.token, query: { name } });
    if (made.status !== 200) throw new SetupError(`creating group ${name} answered ${made.status}: ${made.text}`);
    groupId = Number(made.body.group_id);
  }
  const listed = await http.call('GET', `/groups/${groupId}/members`, { token: owner.token });
  if (listed.status !== 200) throw new SetupError(`listing group ${groupId} answered ${listed.status}: ${listed.text}`);
  const present = new Set(listed.body.map((m) => m.user_id));
  await bounded(
    members.filter((u) => !present.has(u.id)),
    concurrency,
    async (user) => {
      const added = await http.call('POST', `/groups/${groupId}/add-member`, {
        token: owner.token,
        query: { user_id: user.id },
      });
      // 409: already a member (a concurrent or earlier run added them): as good.
      if (added.status !== 200 && added.status !== 409) {
        throw new SetupError(`adding ${user.username} to group ${groupId} answered ${added.status}: ${added.text}`);
      }
    },
  );
  return groupId;
}

/** A short random hex string that keeps this run's messages apart from earlier runs'. */
export const newNonce = () => randomBytes(4).toString('hex');

/** The ws:// chat endpoint of a node given by its http:// base URL, with `token`. */
export function chatUrl(baseUrl, token) {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'ws:') {
    throw new SetupError(`${baseUrl}: give the node as http://host:port (no TLS)`);
  }
  return `ws://${url.host}/ws/chat?token=${encodeURIComponent(token)}`;
}
