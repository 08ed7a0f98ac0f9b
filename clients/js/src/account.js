// HTTP/JSON client of the account server (docs/protocol.md §3), over `fetch`.

import { MovanError } from './errors.js';

/** How long one account request may take, like the Rust SDK. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Longest error body quoted in a MovanError when it is not the documented JSON. */
const MAX_QUOTED_BODY = 512;

/**
 * What a login or refresh returns. Fields the server adds later are kept as they come.
 *
 * @typedef {object} Session
 * @property {string} uid the player's uid (a decimal string; treat it as opaque)
 * @property {string} token the access token (a JWT) for the sync server, `logout` and `me`
 * @property {string} refresh_token single-use; {@link AccountClient#refresh} exchanges it for a new session
 * @property {number} expires_in seconds until `token` expires
 * @property {string} sync_addr the sync server's TCP address, `host:port`
 * @property {string} [sync_ws_url] the sync server's WebSocket URL, `ws://host:port/ws` (when it has a WebSocket listener)
 * @property {string} [session_key] standard base64 of the 32-byte key that seals sync connections; keep it secret
 */

/**
 * @typedef {object} AccountOptions
 * @property {typeof fetch} [fetch] the fetch implementation (default `globalThis.fetch`)
 * @property {number} [timeoutMs] per request, default {@link REQUEST_TIMEOUT_MS}
 */

/**
 * A client of one account server.
 *
 * In a browser on another origin than the account server, the server must allow the page's origin (CORS): every
 * request here is a JSON POST or carries `Authorization`, so the browser sends a preflight.
 */
export class AccountClient {
  /**
   * @param {string} baseUrl e.g. `http://127.0.0.1:2026` (a trailing `/` is ignored); `''` means the page's own origin
   * @param {AccountOptions} [opts]
   */
  constructor(baseUrl, opts = {}) {
    /** The base URL requests go to, without a trailing `/`. */
    this.baseUrl = String(baseUrl ?? '').replace(/\/+$/, '');
    /** @private */
    this._fetch = opts.fetch ?? globalThis.fetch?.bind(globalThis);
    /** @private */
    this._timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  /**
   * `POST /v1/register`: creates the account.
   * @param {string} username
   * @param {string} password
   * @returns {Promise<string>} the new uid
   * @throws {MovanError} e.g. 409 `username_taken`, 400 `invalid_username`/`invalid_password`, 429 `too_many_attempts`
   */
  async register(username, password) {
    const body = await this._request('POST', '/v1/register', { json: { username, password } });
    return body.uid;
  }

  /**
   * `POST /v1/login`: checks the password and opens a session.
   * @param {string} username
   * @param {string} password
   * @returns {Promise<Session>}
   * @throws {MovanError} 401 `invalid_credentials`, 403 `banned`, 429 `too_many_attempts` and 503 `no_sync_server`
   *   (both with `retryAfter`)
   */
  login(username, password) {
    return this._request('POST', '/v1/login', { json: { username, password } });
  }

  /**
   * `POST /v1/refresh`: exchanges a refresh token (single use) for a new session of the same login.
   * @param {string} refreshToken
   * @returns {Promise<Session>}
   * @throws {MovanError} 401 `invalid_refresh_token`, 403 `banned`, 503 `no_sync_server`
   */
  refresh(refreshToken) {
    return this._request('POST', '/v1/refresh', { json: { refresh_token: refreshToken } });
  }

  /**
   * Registers `username` unless it exists (409), then logs in.
   * @param {string} username
   * @param {string} password
   * @returns {Promise<Session>}
   */
  async registerOrLogin(username, password) {
    try {
      await this.register(username, password);
    } catch (e) {
      if (!(e instanceof MovanError) || e.status !== 409) throw e;
    }
    return this.login(username, password);
  }

  /**
   * `POST /v1/logout`: ends the session of `token` (its sync connection is closed with `session_revoked`).
   * @param {string} token
   * @returns {Promise<void>}
   */
  async logout(token) {
    await this._request('POST', '/v1/logout', { token });
  }

  /**
   * `GET /v1/me`.
   * @param {string} token
   * @returns {Promise<{uid: string, username: string, role: string}>}
   */
  me(token) {
    return this._request('GET', '/v1/me', { token });
  }

  /**
   * `GET /v1/me/matches`: finished games, newest first.
   * @param {string} token
   * @param {{limit?: number, before?: string|null}} [page]
   * @returns {Promise<{matches: object[], next: string|null}>}
   */
  matches(token, page = {}) {
    const q = new URLSearchParams({ limit: String(page.limit ?? 20) });
    if (page.before) q.set('before', page.before);
    return this._request('GET', `/v1/me/matches?${q}`, { token });
  }

  /**
   * `GET /v1/matches/{matchId}/replay?format=jsonl`: a finished match's replay (docs/replay.md), for its players and
   * admins. `frames[n]` is frame n's `sync_frame` message exactly as broadcast (a string: parse it like any server
   * message). Fails with a {@link MovanError} status 404, code `replay_not_found`, when the match is not the
   * player's or has no replay.
   * @param {string} token
   * @param {string} matchId
   * @returns {Promise<{header: object, frames: string[]}>}
   */
  async replay(token, matchId) {
    const path = `/v1/matches/${encodeURIComponent(matchId)}/replay?format=jsonl`;
    const text = await this._request('GET', path, { token, raw: true });
    const lines = text.split('\n').filter((line) => line !== '');
    if (lines.length === 0) {
      throw new MovanError(`GET ${path}: the replay is empty`, { code: 'protocol' });
    }
    let header;
    try {
      header = JSON.parse(lines[0]);
    } catch (e) {
      throw new MovanError(`GET ${path}: the replay header is not JSON`, { code: 'protocol', cause: e });
    }
    return { header, frames: lines.slice(1) };
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{json?: unknown, token?: string, raw?: boolean}} opts
   * @returns {Promise<any>} the decoded JSON body, or `null` for an empty one; with `raw`, the body as text
   * @private
   */
  async _request(method, path, { json, token, raw = false }) {
    if (typeof this._fetch !== 'function') {
      throw new MovanError('no fetch implementation: pass one as the fetch option', { code: 'network' });
    }
    /** @type {Record<string, string>} */
    const headers = {};
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), this._timeoutMs) : undefined;
    let resp;
    let text;
    try {
      resp = await this._fetch(this.baseUrl + path, {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: controller?.signal,
      });
      text = await resp.text();
    } catch (e) {
      const timedOut = controller?.signal.aborted;
      throw new MovanError(
        timedOut
          ? `${method} ${path}: no answer within ${this._timeoutMs} ms`
          : `${method} ${path} failed: ${/** @type {Error} */ (e)?.message ?? e}`,
        { code: timedOut ? 'timeout' : 'network', cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
    if (!resp.ok) throw httpError(resp, text);
    if (raw) return text;
    if (text === '') return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new MovanError(`${method} ${path}: the response is not JSON`, {
        status: resp.status,
        code: 'protocol',
        cause: e,
      });
    }
  }
}

/**
 * @param {Response} resp
 * @param {string} text
 * @returns {MovanError}
 */
function httpError(resp, text) {
  let code = '';
  let message = text.slice(0, MAX_QUOTED_BODY);
  try {
    const body = JSON.parse(text);
    if (body && typeof body.code === 'string') {
      code = body.code;
      message = typeof body.message === 'string' ? body.message : '';
    }
  } catch {
    // Not the documented JSON: quote the body.
  }
  const retryAfter = parseRetryAfter(resp.headers.get('Retry-After'));
  return new MovanError(message || `HTTP ${resp.status}`, {
    status: resp.status,
    code,
    retryAfter,
  });
}

/**
 * `Retry-After` as seconds: delay-seconds, or an HTTP date turned into seconds from now (at least 0).
 * @param {string|null} value
 * @returns {number|undefined}
 */
export function parseRetryAfter(value) {
  if (value == null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
