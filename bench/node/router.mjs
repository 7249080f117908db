#!/usr/bin/env node
// A storage-less chat router on one Node event loop, speaking just enough of hubbub's
// wire contract (v1) for load.mjs and the Python benches to run against it unchanged:
// the cost of routing alone, as a floor to compare hubbub with.
//
//   node router.mjs [--port 8320] [--host 127.0.0.1]     (--port 0: any free port, printed)
//
// What it does: POST /auth/signup, POST /auth/login (form or JSON), GET /users/me,
// GET /groups/all, POST /groups/create-group, GET /groups/{id}/members,
// POST /groups/{id}/add-member, GET /health/live|ready; WebSocket /ws/chat?token=...
// with `ping` -> `pong`; `message` -> `ack` to the sending connection and the message
// to every connection of the recipient and of the sender; `group_message` -> `ack` and
// the message to every connection of every member. Frames have hubbub's fields.
//
// What it skips, on purpose: storage of any kind (users, groups and messages live in
// memory and die with the process; nothing is durable before an ack), password hashing
// (passwords are compared as given), token signing (a token is an opaque lookup key
// shaped like a JWT so that the benches can read its `exp`), rate limits, client_id
// deduplication, offline delivery and catch-up, presence, read receipts, v2 features,
// admin rules beyond "the creator adds members", and input limits beyond JSON parsing.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values: opts } = parseArgs({
  options: { port: { type: 'string', default: '8320' }, host: { type: 'string', default: '127.0.0.1' } },
});

const users = new Map(); // id -> {id, username, email, password, conns: Set}
const byName = new Map(); // username -> user
const tokens = new Map(); // token -> user
const groups = new Map(); // id -> {id, name, owner, members: Map(user id -> role)}
let nextUserId = 1;
let nextGroupId = 1;
let nextMessageId = 1;

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
function issueToken(user, kind) {
  const token = `${b64({ alg: 'none' })}.${b64({ sub: String(user.id), type: kind, exp: Math.floor(Date.now() / 1000) + 86400, n: randomBytes(6).toString('hex') })}.x`;
  tokens.set(token, user);
  return token;
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function bearer(req) {
  const header = req.headers.authorization ?? '';
  return header.startsWith('Bearer ') ? tokens.get(header.slice(7)) : undefined;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString();
  if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return null;
  }
}

async function http(req, res) {
  const url = new URL(req.url, 'http://router');
  const path = url.pathname;
  const route = `${req.method} ${path.replace(/\/\d+(?=\/|$)/g, '/:id')}`;
  const id = Number((/\/(\d+)(?:\/|$)/.exec(path) ?? [])[1]);
  if (route === 'GET /health/live' || route === 'GET /health/ready') return reply(res, 200, { status: 'ok' });
  if (route === 'POST /auth/signup') {
    const body = await readBody(req);
    if (!body || typeof body.username !== 'string' || typeof body.password !== 'string' || !body.username) {
      return reply(res, 422, { detail: 'username, email and password are required' });
    }
    if (byName.has(body.username)) return reply(res, 409, { detail: 'username or email taken' });
    const user = { id: nextUserId++, username: body.username, email: body.email, password: body.password, conns: new Set() };
    users.set(user.id, user);
    byName.set(user.username, user);
    return reply(res, 201, { Success: 'User created', id: user.id, username: user.username });
  }
  if (route === 'POST /auth/login') {
    const body = await readBody(req);
    const user = body && byName.get(body.username);
    if (!user || user.password !== body.password) return reply(res, 401, { detail: 'bad credentials' });
    return reply(res, 200, { access_token: issueToken(user, 'access'), refresh_token: issueToken(user, 'refresh'), token_type: 'bearer' });
  }
  const me = bearer(req);
  if (!me) return reply(res, 401, { detail: 'not authenticated' });
  if (route === 'GET /users/me') {
    return reply(res, 200, { id: me.id, username: me.username, email: me.email, presence_status: me.conns.size ? 'online' : 'offline', last_seen: null });
  }
  if (route === 'GET /groups/all') {
    return reply(res, 200, [...groups.values()].filter((g) => g.members.has(me.id)).map((g) => ({ id: g.id, name: g.name })));
  }
  if (route === 'POST /groups/create-group') {
    const body = (await readBody(req)) ?? {};
    const name = url.searchParams.get('name') ?? body.name;
    if (!name) return reply(res, 422, { detail: 'name is required' });
    const group = { id: nextGroupId++, name, members: new Map([[me.id, 'admin']]) };
    groups.set(group.id, group);
    return reply(res, 200, { Success: 'Group Created', group_id: group.id });
  }
  const group = groups.get(id);
  if (route === 'GET /groups/:id/members' || route === 'POST /groups/:id/add-member') {
    if (!group) return reply(res, 404, { detail: 'no such group' });
    if (!group.members.has(me.id)) return reply(res, 403, { detail: 'not a member' });
  }
  if (route === 'GET /groups/:id/members') {
    return reply(res, 200, [...group.members].map(([userId, role]) => ({ user_id: userId, username: users.get(userId).username, role })));
  }
  if (route === 'POST /groups/:id/add-member') {
    if (group.members.get(me.id) !== 'admin') return reply(res, 403, { detail: 'only an admin may add members' });
    const body = (await readBody(req)) ?? {};
    const userId = Number(url.searchParams.get('user_id') ?? body.user_id);
    if (!users.has(userId)) return reply(res, 404, { detail: 'no such user' });
    if (group.members.has(userId)) return reply(res, 409, { detail: 'already a member' });
    group.members.set(userId, 'member');
    return reply(res, 200, { Success: 'User added to the group' });
  }
  return reply(res, 404, { detail: 'not found' });
}

// -- the chat socket ------------------------------------------------------------

// Frames written in one turn of the event loop leave in one writev per connection: each
// socket is corked on its first frame and uncorked in the check phase (ws keeps its
// net.Socket as _socket). Without this a fan-out costs a syscall per frame, and the
// clients a read per frame.
let corked = [];
function uncorkAll() {
  const batch = corked;
  corked = [];
  for (const ws of batch) {
    ws.corked = false;
    ws._socket.uncork();
  }
}
function send(ws, text) {
  if (ws.readyState !== 1) return;
  if (!ws.corked) {
    ws.corked = true;
    ws._socket.cork();
    corked.push(ws);
    if (corked.length === 1) setImmediate(uncorkAll);
  }
  ws.send(text);
}

function error(ws, reason, clientId) {
  send(ws, JSON.stringify(clientId === undefined ? { type: 'error', reason } : { type: 'error', reason, client_id: clientId }));
}

function messageObject(user, frame, status) {
  return {
    message_id: nextMessageId++,
    author_id: user.id,
    author_name: user.username,
    message: frame.message ?? null,
    image_url: frame.image_url ?? null,
    timestamp: new Date().toISOString(),
    status,
    edited_at: null,
    deleted: false,
    reply_to: null,
    reactions: [],
  };
}

function onFrame(ws, user, data) {
  let frame;
  try {
    frame = JSON.parse(data.toString());
  } catch {
    return error(ws, 'invalid frame');
  }
  if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') return error(ws, 'invalid frame');
  const clientId = frame.client_id;
  const cid = clientId === undefined ? {} : { client_id: clientId };
  switch (frame.type) {
    case 'ping':
      return send(ws, '{"type":"pong"}');
    case 'message': {
      const to = users.get(frame.recipient_id);
      if (!to) return error(ws, 'recipient not found', clientId);
      if (!frame.message && !frame.image_url) return error(ws, 'empty message', clientId);
      const status = to.conns.size ? 'delivered' : 'pending';
      const body = messageObject(user, frame, status);
      send(ws, JSON.stringify({ type: 'ack', message_id: body.message_id, status, ...cid }));
      const text = JSON.stringify({ type: 'message', ...body, recipient_id: to.id, recipient_name: to.username, ...cid });
      for (const conn of to.conns) send(conn, text);
      if (to !== user) for (const conn of user.conns) send(conn, text);
      return;
    }
    case 'group_message': {
      const group = groups.get(frame.group_id);
      if (!group || !group.members.has(user.id)) return error(ws, 'user is not a member of the group', clientId);
      if (!frame.message && !frame.image_url) return error(ws, 'empty message', clientId);
      const body = messageObject(user, frame, 'delivered');
      send(ws, JSON.stringify({ type: 'ack', message_id: body.message_id, status: 'delivered', ...cid }));
      const text = JSON.stringify({ type: 'group_message', group_id: group.id, group_name: group.name, ...body, ...cid });
      for (const memberId of group.members.keys()) for (const conn of users.get(memberId).conns) send(conn, text);
      return;
    }
    case 'read':
    case 'group_read':
    case 'presence':
    case 'typing':
      return; // accepted and ignored: the router keeps no such state
    default:
      return error(ws, 'unknown_type', clientId);
  }
}

const server = createServer((req, res) => {
  http(req, res).catch((err) => reply(res, 500, { detail: String(err) }));
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://router');
  if (url.pathname !== '/ws/chat') return socket.destroy();
  const header = req.headers.authorization ?? '';
  const token = url.searchParams.get('token') ?? (header.startsWith('Bearer ') ? header.slice(7) : undefined);
  wss.handleUpgrade(req, socket, head, (ws) => {
    const user = tokens.get(token);
    // As hubbub: a bad token is accepted, then closed with 1008.
    if (!user) return ws.close(1008, 'bad token');
    user.conns.add(ws);
    ws.on('message', (data) => onFrame(ws, user, data));
    ws.on('close', () => user.conns.delete(ws));
    ws.on('error', () => user.conns.delete(ws));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(opts.port), opts.host, () => {
  // With --port 0 the kernel picks the port: this line is how a caller learns it.
  process.stderr.write(`router listening on http://${opts.host}:${server.address().port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
