// The HTTP API with the login kept in localStorage. Access tokens are refreshed shortly
// before they expire and once more after a 401. Refresh tokens rotate (a spent one
// presented again revokes the whole login), so refreshes are serialised across tabs with
// a Web Lock, and a tab that waited re-reads the pair another tab may have stored.

const TOKENS_KEY = "hubbub.tokens";
const REFRESH_MARGIN_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

/** The login ended (refresh refused): the app shows the login form again. */
export class LoggedOut extends Error {}

function claimsOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload));
}

/** The user id of the login stored now (another tab may have changed it), or null. */
export function storedUserId() {
  try {
    return Number(claimsOf(JSON.parse(localStorage.getItem(TOKENS_KEY)).access_token).sub);
  } catch {
    return null;
  }
}

export const TOKENS_STORAGE_KEY = TOKENS_KEY;

/** When to refresh `token`: a minute before it expires, or a quarter of its lifetime
 * before if it lives less than four minutes. 0 (now) if it cannot be read. */
function refreshAt(token) {
  try {
    const { exp, iat } = claimsOf(token);
    const margin = Math.min(REFRESH_MARGIN_MS, ((exp - iat) * 1000) / 4);
    return exp * 1000 - margin;
  } catch {
    return 0;
  }
}

async function withLock(name, fn) {
  if (navigator.locks) return navigator.locks.request(name, fn);
  return fn(); // Not a secure context: no Web Locks; one tab at a time still works.
}

export class Api {
  constructor(onLoggedOut) {
    this.onLoggedOut = onLoggedOut;
    this.refreshing = null;
  }

  get tokens() {
    try {
      return JSON.parse(localStorage.getItem(TOKENS_KEY));
    } catch {
      return null;
    }
  }

  set tokens(pair) {
    if (pair) localStorage.setItem(TOKENS_KEY, JSON.stringify(pair));
    else localStorage.removeItem(TOKENS_KEY);
  }

  get loggedIn() {
    return Boolean(this.tokens?.refresh_token);
  }

  async login(username, password) {
    const pair = await this.raw("POST", "/auth/login", { json: { username, password } });
    this.tokens = { access_token: pair.access_token, refresh_token: pair.refresh_token };
  }

  async signup(username, email, password) {
    await this.raw("POST", "/auth/signup", { json: { username, email, password } });
    await this.login(username, password);
  }

  async logout() {
    const pair = this.tokens;
    this.tokens = null;
    if (pair?.refresh_token) {
      await this.raw("POST", "/auth/logout", { json: { refresh_token: pair.refresh_token } })
        .catch(() => {}); // Logging out locally is what matters.
    }
  }

  /** A valid access token, refreshed first if it is close to expiring (refreshAt). */
  async accessToken({ force = false } = {}) {
    const pair = this.tokens;
    if (!pair) throw new LoggedOut();
    if (!force && Date.now() < refreshAt(pair.access_token)) {
      return pair.access_token;
    }
    if (!this.refreshing) {
      this.refreshing = this.refresh(pair.refresh_token).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async refresh(spent) {
    return withLock("hubbub-refresh", async () => {
      const current = this.tokens;
      if (!current) throw new LoggedOut();
      if (current.refresh_token !== spent) return current.access_token; // Another tab did it.
      let pair;
      try {
        pair = await this.raw("POST", "/auth/refresh", { token: current.refresh_token });
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          this.tokens = null;
          this.onLoggedOut();
          throw new LoggedOut();
        }
        throw error;
      }
      this.tokens = { access_token: pair.access_token, refresh_token: pair.refresh_token };
      return pair.access_token;
    });
  }

  /** An authenticated call; one retry with a fresh token after a 401. */
  async call(method, path, options = {}) {
    try {
      return await this.raw(method, path, { ...options, token: await this.accessToken() });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      const token = await this.accessToken({ force: true });
      return this.raw(method, path, { ...options, token });
    }
  }

  get(path, params) {
    const query = params ? "?" + new URLSearchParams(
      Object.entries(params).filter(([, v]) => v !== null && v !== undefined),
    ) : "";
    return this.call("GET", path + query);
  }

  post(path, json) {
    return this.call("POST", path, { json });
  }

  upload(file) {
    const form = new FormData();
    form.append("file", file);
    return this.call("POST", "/upload/image", { body: form });
  }

  async raw(method, path, { json, body, token } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const response = await fetch(path, {
      method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const detail = typeof data?.detail === "string" ? data.detail : response.statusText;
      throw new ApiError(response.status, detail);
    }
    return data;
  }
}
