// The operator page: polls GET /ops/state every REFRESH_MS with the operator token and
// renders it. No framework, no build: the DOM is built with textContent only (never
// innerHTML), so nothing the server reports can inject markup.

const REFRESH_MS = 2000;
const TOKEN_KEY = "hubbub.opsToken";
const HISTORY = 60; // rate samples kept for the chart: two minutes at 2 s

const $ = (id) => document.getElementById(id);

let timer = null;
let previous = null; // the last state, for rates
const history = []; // {in, out} frames per second

// -- the token --------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showLogin(message) {
  stop();
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  setStatus("signed out", "unknown");
  $("token").focus();
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
}

// -- polling ----------------------------------------------------------------

function stop() {
  if (timer !== null) {
    clearTimeout(timer);
    timer = null;
  }
}

async function poll() {
  timer = null;
  const current = token();
  if (!current) {
    showLogin();
    return;
  }
  const controller = new AbortController();
  const abort = setTimeout(() => controller.abort(), REFRESH_MS * 2);
  try {
    const response = await fetch("/ops/state", {
      headers: { Authorization: `Bearer ${current}` },
      cache: "no-store",
      signal: controller.signal,
    });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("That token was refused.");
      return;
    }
    if (!response.ok) {
      throw new Error(`GET /ops/state answered ${response.status}`);
    }
    const state = await response.json();
    showDashboard();
    render(state);
  } catch (error) {
    setStatus("unreachable", "bad");
    $("refreshed").textContent = `last try ${clock(new Date())}: ${error.message}`;
  } finally {
    clearTimeout(abort);
  }
  if ($("login").hidden) {
    timer = setTimeout(poll, REFRESH_MS);
  }
}

// -- formatting ---------------------------------------------------------------

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function ms(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const value = seconds * 1000;
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 100) return `${value.toFixed(1)} ms`;
  return `${Math.round(value)} ms`;
}

function count(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}

function rate(value) {
  if (value === null) return "–";
  return value >= 100 ? String(Math.round(value)) : value.toFixed(1);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function setStatus(text, kind) {
  const pill = $("status");
  pill.textContent = text;
  pill.className = `pill pill-${kind}`;
}

// -- rendering ----------------------------------------------------------------

function render(state) {
  const rates = ratesSince(previous, state);
  previous = state;
  setStatus(state.ready ? "ready" : "unavailable", state.ready ? "good" : "bad");
  $("node-id").textContent = state.node_id || "–";
  $("uptime").textContent = duration(state.uptime);
  $("refreshed").textContent = `updated ${clock(new Date(state.time * 1000))}`;
  renderKpis(state, rates);
  renderTree(state.tree);
  renderHealth(state);
  renderLatency(state.latency);
  renderNodes(state.nodes, state.node_id);
  if (rates) {
    history.push(rates);
    if (history.length > HISTORY) history.shift();
  }
  drawRates();
}

function ratesSince(before, now) {
  if (!before || before.node_id !== now.node_id) return null;
  const elapsed = now.uptime - before.uptime;
  if (!(elapsed > 0)) return null;
  const per = (key) => Math.max(0, (now.counters[key] - before.counters[key]) / elapsed);
  return {
    in: per("frames_in"),
    out: per("frames_out"),
    stored: per("direct_stored") + per("group_stored"),
  };
}

function renderKpis(state, rates) {
  const c = state.counters;
  $("kpi-connections").textContent = count(state.connections);
  $("kpi-opened").textContent = `${count(c.connections_opened)} opened`;
  $("kpi-in").textContent = rates ? rate(rates.in) : "…";
  $("kpi-in-total").textContent = `${count(c.frames_in)} total`;
  $("kpi-out").textContent = rates ? rate(rates.out) : "…";
  $("kpi-out-total").textContent = `${count(c.frames_out)} total`;
  $("kpi-stored").textContent = rates ? rate(rates.stored) : "…";
  $("kpi-stored-total").textContent =
    `${count(c.direct_stored)} direct · ${count(c.group_stored)} group`;
  const commit = state.latency.commit;
  const batch = state.latency.batch_size;
  $("kpi-commit").textContent = ms(commit && commit.p99);
  $("kpi-batch").textContent =
    batch && batch.mean !== null ? `${batch.mean.toFixed(1)} writes per commit` : "no commits yet";
  const delivery = state.latency.delivery;
  $("kpi-delivery").textContent = ms(delivery && delivery.p99);
  $("kpi-delivery-count").textContent = `${count(delivery ? delivery.count : 0)} messages delivered`;
}

// Rows of the tree, depth first, each with its depth and whether it is its parent's last.
function flatten(entry, depth, rows, ancestorsLast) {
  rows.push({ entry, depth, ancestorsLast });
  const children = entry.children || [];
  children.forEach((child, i) => {
    flatten(child, depth + 1, rows, [...ancestorsLast, i === children.length - 1]);
  });
  return rows;
}

function renderTree(tree) {
  const rows = flatten(tree, 0, [], []);
  const body = el("tbody");
  let restarts = 0;
  let unhealthy = 0;
  const deepest = Math.max(1, ...rows.map((r) => r.entry.mailbox_depth || 0));
  for (const { entry, depth, ancestorsLast } of rows) {
    restarts += entry.restarts || 0;
    if (entry.state !== "running") unhealthy += 1;
    const guide = ancestorsLast
      .slice(1)
      .map((last, i, all) => (i === all.length - 1 ? (last ? "└─ " : "├─ ") : last ? "   " : "│  "))
      .join("");
    const name = el(
      "td",
      { class: "name" },
      el("span", { class: "guide", text: guide }),
      el("span", { class: depth === 0 ? "root" : "", text: entry.name }),
    );
    const depthValue = entry.mailbox_depth || 0;
    const bar = el("span", { class: "meter-fill" });
    bar.style.width = `${Math.round((depthValue / deepest) * 100)}%`;
    const mailbox = el(
      "td",
      { class: "num mailbox" },
      el("span", { class: "meter" }, bar),
      el("span", { class: "mailbox-value", text: String(depthValue) }),
    );
    const restartCell = el("td", {
      class: `num restarts${entry.restarts ? " hot" : ""}`,
      "data-restarts": String(entry.restarts || 0),
      text: String(entry.restarts || 0),
    });
    body.append(
      el(
        "tr",
        { "data-name": entry.name, "data-state": entry.state },
        name,
        el("td", {}, el("span", { class: `state state-${entry.state}`, text: entry.state })),
        restartCell,
        mailbox,
      ),
    );
  }
  $("tree").tBodies[0].replaceWith(body);
  $("tree-summary").textContent =
    `${rows.length} entries · ${restarts} restart${restarts === 1 ? "" : "s"}` +
    (unhealthy ? ` · ${unhealthy} not running` : "");
}

function healthRow(list, label, value, kind) {
  list.append(el("dt", { text: label }), el("dd", { class: kind ? `ok-${kind}` : "", text: value }));
}

function renderHealth(state) {
  const list = el("dl", { class: "health", id: "health" });
  const c = state.counters;
  const storage = state.storage;
  healthRow(list, "Storage", `${storage.backend} · ${storage.ok ? "answering" : "down"}`, storage.ok ? "good" : "bad");
  const redis = state.redis;
  if (!redis.configured) {
    healthRow(list, "Redis", "not configured (one node)", "muted");
  } else {
    healthRow(list, "Redis", redis.ok ? "answering" : "down", redis.ok ? "good" : "bad");
  }
  const dropped = c.bus_dropped;
  healthRow(list, "Bus drops", count(dropped), dropped ? "warn" : "");
  healthRow(list, "Resyncs", `${count(c.resyncs_reconnect)} reconnect · ${count(c.resyncs_lost)} lost`);
  const slow = c.slow_queue_full + c.slow_not_reading + c.slow_write_stuck;
  healthRow(
    list,
    "Slow consumers",
    `${count(slow)} closed (${count(c.slow_queue_full)} queue · ${count(c.slow_not_reading)} unread · ${count(c.slow_write_stuck)} stuck)`,
    slow ? "warn" : "",
  );
  healthRow(list, "Group overflows", count(c.group_overflows), c.group_overflows ? "warn" : "");
  $("health").replaceWith(list);
  $("check-ms").textContent = `checked in ${state.check_ms} ms`;
}

const LATENCY_LABELS = {
  commit: "Storage commit",
  delivery: "Delivery",
  handshake: "WS handshake",
  http: "HTTP request",
};

function renderLatency(latency) {
  const body = el("tbody");
  for (const [key, label] of Object.entries(LATENCY_LABELS)) {
    const q = latency[key];
    body.append(
      el(
        "tr",
        {},
        el("th", { text: label }),
        el("td", { class: "num", text: ms(q && q.p50) }),
        el("td", { class: "num", text: ms(q && q.p90) }),
        el("td", { class: "num", text: ms(q && q.p99) }),
        el("td", { class: "num muted", text: count(q ? q.count : 0) }),
      ),
    );
  }
  $("latency").tBodies[0].replaceWith(body);
}

function renderNodes(nodes, self) {
  const body = el("tbody");
  if (nodes === null) {
    body.append(el("tr", {}, el("td", { colspan: "4", class: "error", text: "node list unavailable (Redis)" })));
    $("nodes-summary").textContent = "–";
  } else {
    const now = Date.now() / 1000;
    for (const node of nodes) {
      const here = node.node_id === self;
      body.append(
        el(
          "tr",
          { class: here ? "self" : "", "data-node": node.node_id },
          el("td", {}, el("code", { text: node.node_id }), here ? el("span", { class: "tag", text: "this node" }) : ""),
          el("td", { class: "muted", text: node.url || "–" }),
          el("td", { class: "num", text: count(node.connections) }),
          el("td", { class: "num", text: node.started_at ? duration(now - node.started_at) : "–" }),
        ),
      );
    }
    $("nodes-summary").textContent = `${nodes.length} live`;
  }
  $("nodes").tBodies[0].replaceWith(body);
}

// -- the rate chart -------------------------------------------------------------

function drawRates() {
  const canvas = $("rates");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 520;
  const height = canvas.clientHeight || 140;
  if (canvas.width !== width * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const pad = { left: 36, right: 8, top: 10, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const top = Math.max(1, ...history.map((r) => Math.max(r.in, r.out)));
  g.font = "11px ui-monospace, monospace";
  g.fillStyle = styles.getPropertyValue("--muted");
  g.strokeStyle = styles.getPropertyValue("--grid");
  g.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = pad.top + (plotH * i) / 2;
    g.beginPath();
    g.moveTo(pad.left, y);
    g.lineTo(width - pad.right, y);
    g.stroke();
    g.fillText(rate((top * (2 - i)) / 2), 2, y + 4);
  }
  // The span shown is what was collected, up to two minutes: the line always fills the
  // chart rather than starting as a dot in its corner.
  const span = Math.round(((history.length - 1) * REFRESH_MS) / 1000);
  g.fillText(span ? `${duration(span)} ago` : "", pad.left, height - 4);
  g.fillText("now", width - pad.right - 22, height - 4);
  if (history.length < 2) {
    g.fillText("collecting…", pad.left + plotW / 2 - 30, pad.top + plotH / 2);
    return;
  }
  const x = (i) => pad.left + (plotW * i) / (history.length - 1);
  const y = (v) => pad.top + plotH - (plotH * v) / top;
  for (const [key, colour] of [["out", "--out"], ["in", "--in"]]) {
    g.strokeStyle = styles.getPropertyValue(colour);
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((r, i) => (i ? g.lineTo(x(i), y(r[key])) : g.moveTo(x(i), y(r[key]))));
    g.stroke();
  }
}

// -- start ----------------------------------------------------------------------

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  previous = null;
  history.length = 0;
  stop();
  poll();
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});

poll();
