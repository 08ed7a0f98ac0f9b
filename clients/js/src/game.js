// A sync connection that survives network drops, like the Rust SDK's GameClient: reconnects on its own, reloads the
// frames it missed, and hands out every frame of a game exactly once, in order.

import { Emitter } from './emitter.js';
import { describeClose } from './close.js';
import { isFinalCode, MovanError } from './errors.js';
import { RELOAD_PROTO, SyncConnection } from './sync.js';

const SPECTATE_PROTO = 'room_spectate';

/** An idle session pings at least this often, well within the server's default `sync.idle_timeout_secs` of 60. */
export const KEEPALIVE_MS = 15_000;

/**
 * How a {@link GameSession} reconnects.
 *
 * @typedef {object} ReconnectPolicy
 * @property {boolean} enabled reconnect at all; with `false` a drop ends the session
 * @property {number} giveUpAfterMs stop trying after this long without a connection (match the server's
 *   `sync.reconnect_grace_secs`: later the seat is gone anyway)
 * @property {number} initialDelayMs wait before the first attempt; doubled after each failure
 * @property {number} maxDelayMs longest wait between attempts
 * @property {number} reloadTimeoutMs time allowed for a reload of missed frames
 */

/** @type {Readonly<ReconnectPolicy>} */
export const DEFAULT_POLICY = Object.freeze({
  enabled: true,
  giveUpAfterMs: 30_000,
  initialDelayMs: 100,
  maxDelayMs: 2_000,
  reloadTimeoutMs: 30_000,
});

/**
 * @typedef {object} GameSessionOptions
 * @property {import('./account.js').Session} session the login (or refresh) response
 * @property {string} [url] the sync server's WebSocket URL; default the login's `sync_ws_url` (or `ws_url`)
 * @property {any} [WebSocket] a WebSocket constructor (default `globalThis.WebSocket`)
 * @property {import('./account.js').AccountClient} [account] refreshes the session when a reconnect finds the access
 *   token expired
 * @property {Partial<ReconnectPolicy>} [policy]
 * @property {number} [keepaliveMs] default {@link KEEPALIVE_MS}
 * @property {number} [handshakeTimeoutMs]
 * @property {number} [maxFrameBytes]
 */

/**
 * A reconnecting sync connection. Events (`on(name, fn)`):
 *
 * - `frame` (`{frame_count, actions}`): the next frame of the current game; across drops and reconnects frame numbers
 *   go 0, 1, 2, ... with none missing and none twice
 * - `game_start`: a new game (the repeat a reconnect brings is not shown again); `frame`s start at 0
 * - `room_state`, `room_left` (`{room_id}` answering `room_leave`, or `{room_id, reason, message}` when the
 *   server closed a waiting room), `game_over`, `pong`, `desync` (`{frame, groups, majority}`), `error` (`{code,
 *   message, proto}`): as the server sent them
 * - `reconnecting` (`{attempt, error}`): the connection dropped; `attempt` 1 right after the drop, then one per failed
 *   attempt. Sends fail until `reconnected`
 * - `reconnected` (`{attempts, reloadFrom}`): connected and bound again; when a game runs, the frames missed since
 *   `reloadFrom` follow as `frame` events (a spectator watches again by itself first, see {@link GameSession#spectate})
 * - `session` (a new {@link import('./account.js').Session}): the session was refreshed during a reconnect
 * - `close` (`{error}`): the session ended for good: `error` is `null` after {@link GameSession#close}, else why (a
 *   final server error such as `replaced` or `session_revoked`, a crypto failure, or the last reconnect failure)
 */
export class GameSession extends Emitter {
  /**
   * Connects (the first connection must succeed: a failure rejects, no retry) and returns the running session.
   * @param {GameSessionOptions} opts
   * @returns {Promise<GameSession>}
   */
  static async connect(opts) {
    const game = new GameSession(opts);
    await game.open();
    return game;
  }

  /** @param {GameSessionOptions} opts */
  constructor(opts) {
    super();
    const session = opts?.session;
    if (!session || typeof session.uid !== 'string' || typeof session.token !== 'string') {
      throw new TypeError('GameSession: session {uid, token, session_key} is required');
    }
    const url = opts.url ?? /** @type {any} */ (session).sync_ws_url ?? /** @type {any} */ (session).ws_url;
    if (typeof url !== 'string' || url === '') {
      throw new TypeError('GameSession: url is required (e.g. ws://127.0.0.1:2028/ws)');
    }
    /** The session in use (a refreshed one after a token refresh). */
    this.session = session;
    /** The sync server's WebSocket URL. Reconnects go to the same server, where the seat is kept. */
    this.url = url;
    /** @type {ReconnectPolicy} */
    this.policy = { ...DEFAULT_POLICY, ...(opts.policy ?? {}) };
    /** @private */
    this._opts = opts;
    /** @type {SyncConnection|null} @private */
    this._conn = null;
    /** @type {any} the running game's `game_start` data */
    this.game = null;
    /** @type {string|null} the room {@link GameSession#spectate} watches, to watch again after a reconnect @private */
    this._watching = null;
    /** @type {string|null} what `_watching` was before the last spectate, for an `already_in_room` answer @private */
    this._watchingBefore = null;
    /** The next frame number to deliver. */
    this.nextFrame = 0;
    /** @type {Map<number, any>} frames beyond nextFrame, waiting for a gap to be filled @private */
    this._buffer = new Map();
    /** @type {{from: number, timer: ReturnType<typeof setTimeout>}|null} @private */
    this._reload = null;
    /** @type {{attempt: number, delay: number, giveUpAt: number, timer?: ReturnType<typeof setTimeout>}|null} @private */
    this._reconnect = null;
    /** @type {ReturnType<typeof setInterval>|undefined} @private */
    this._keepalive = undefined;
    /** @private */
    this._lastSentAt = Date.now();
    /** @private */
    this._done = false;
    /** @private */
    this._opened = false;
    /** @type {{error: MovanError|null}|null} */
    this.closeInfo = null;
    /** @type {Promise<{error: MovanError|null}>} resolves once the session ended */
    this.closed = new Promise((resolve) => {
      /** @private */
      this._resolveClosed = resolve;
    });
  }

  /** True while the connection is down and the session is trying to get it back. */
  get isReconnecting() {
    return this._reconnect !== null;
  }

  /** @returns {string|null} the room {@link GameSession#spectate} watches (again after a reconnect), or `null` */
  get watching() {
    return this._watching;
  }

  /** The current connection (it stops working at the next drop), or `null` while reconnecting. */
  get connection() {
    return this._conn;
  }

  /**
   * Opens the first connection; see {@link GameSession.connect}.
   * @returns {Promise<void>}
   */
  async open() {
    if (this._opened) throw new MovanError('open() was already called', { code: 'closed' });
    this._opened = true;
    const conn = this._newConnection(this._opts.handshakeTimeoutMs);
    try {
      await conn.open();
    } catch (e) {
      this._done = true;
      throw e;
    }
    if (this._done) {
      conn.close();
      throw new MovanError('closed by the client', { code: 'closed' });
    }
    this._conn = conn;
    this._lastSentAt = Date.now();
    const every = this._opts.keepaliveMs ?? KEEPALIVE_MS;
    this._keepalive = setInterval(() => this._tickKeepalive(every), Math.max(10, Math.floor(every / 3)));
  }

  /**
   * `room_enter`: joins `roomId` (created when missing), or quick-matches when `null`/omitted.
   * @param {string|null} [roomId]
   */
  enterRoom(roomId = null) {
    this._current().enterRoom(roomId);
    this._lastSentAt = Date.now();
  }

  /** `room_leave`; also ends watching (see {@link GameSession#watching}), even when the send fails. */
  leaveRoom() {
    this._watching = null;
    this._current().leaveRoom();
    this._lastSentAt = Date.now();
  }

  /** `room_prepare`. */
  prepare() {
    this._current().prepare();
    this._lastSentAt = Date.now();
  }

  /**
   * `sync_action`. Fails (a {@link MovanError} `closed`) while reconnecting: an action sent then is lost, as on any
   * dropped connection.
   * @param {object} actionData
   * @param {number} [timestamp] Unix seconds (default: now)
   */
  sendAction(actionData, timestamp) {
    this._current().sendAction(actionData, timestamp);
    this._lastSentAt = Date.now();
  }

  /** `ping`. */
  ping() {
    this._current().ping();
    this._lastSentAt = Date.now();
  }

  /**
   * `room_spectate` (see {@link SyncConnection#spectate}): frames come as `frame` events, each once and in order.
   * The room is remembered ({@link GameSession#watching}): a spectator has no seat to come back to, so after a
   * reconnect the session sends `room_spectate` again by itself, swallows the repeated `game_start` and skips the
   * history frames it already delivered, so the frames go on exactly once and in order, like the Rust SDK's
   * `GameClient`. Watching ends with {@link GameSession#leaveRoom}, `room_left`, `game_over`, or an `error` refusing
   * the `room_spectate` (`room_not_found` on a re-spectate means the game ended meanwhile: `game` becomes `null`).
   * @param {string} roomId
   */
  spectate(roomId) {
    this._current().spectate(roomId);
    this._watchingBefore = this._watching;
    this._watching = roomId;
    this._lastSentAt = Date.now();
  }

  /**
   * `sync_checksum` of `frame` (see {@link SyncConnection#sendChecksum}); disagreeing hashes bring `desync`.
   * @param {number} frame
   * @param {string} hash
   */
  sendChecksum(frame, hash) {
    this._current().sendChecksum(frame, hash);
    this._lastSentAt = Date.now();
  }

  /**
   * Ends the session: closes the connection and stops reconnecting. Emits `close` with `error: null`.
   * @returns {Promise<{error: MovanError|null}>}
   */
  close() {
    this._end(null);
    return this.closed;
  }

  /** @returns {SyncConnection} @private */
  _current() {
    if (this._done) throw new MovanError('the game session has ended', { code: 'closed' });
    if (!this._conn) throw new MovanError('reconnecting: the sync connection is down', { code: 'closed' });
    return this._conn;
  }

  /**
   * @param {number|undefined} handshakeTimeoutMs
   * @returns {SyncConnection}
   * @private
   */
  _newConnection(handshakeTimeoutMs) {
    const conn = new SyncConnection({
      url: this.url,
      uid: this.session.uid,
      token: this.session.token,
      sessionKey: this.session.session_key ?? null,
      WebSocket: this._opts.WebSocket,
      handshakeTimeoutMs,
      maxFrameBytes: this._opts.maxFrameBytes,
    });
    // Events are held by the connection until its open() resolved, and only the current connection's count.
    const live = () => conn === this._conn && !this._done;
    conn.on('sync_frame', (f) => live() && this._onLiveFrame(f));
    conn.on('reload_frames', (chunk) => live() && this._onReloadChunk(chunk));
    conn.on('game_start', (start) => live() && this._onGameStart(start));
    conn.on('game_over', (over) => {
      if (!live()) return;
      this._resetGame();
      this._watching = null;
      this.emit('game_over', over);
    });
    conn.on('room_state', (state) => live() && this.emit('room_state', state));
    conn.on('room_left', (left) => {
      if (!live()) return;
      this._watching = null;
      this.emit('room_left', left);
    });
    conn.on('pong', (pong) => live() && this.emit('pong', pong));
    conn.on('desync', (desync) => live() && this.emit('desync', desync));
    conn.on('error', (err) => live() && this._onServerError(err));
    conn.on('close', (info) => live() && this._onDrop(info));
    return conn;
  }

  /**
   * @param {number} every
   * @private
   */
  _tickKeepalive(every) {
    if (!this._conn || this._done || Date.now() - this._lastSentAt < every) return;
    try {
      this.ping();
    } catch {
      // A failed ping shows up as the connection's close.
    }
  }

  // ---- frames ----

  /**
   * @param {any} start
   * @private
   */
  _onGameStart(start) {
    const repeat = this.game && this.game.room_id === start?.room_id && this.game.start_time === start?.start_time;
    if (repeat) return; // A reconnect or replacement sends the same game_start again.
    this._resetGame();
    this.game = start;
    this.emit('game_start', start);
  }

  /** @private */
  _resetGame() {
    this.game = null;
    this.nextFrame = 0;
    this._buffer.clear();
    this._clearReload();
  }

  /**
   * @param {any} frame
   * @private
   */
  _onLiveFrame(frame) {
    this._acceptFrame(frame);
    if (this._buffer.size > 0 && !this._reload) this._startReload();
  }

  /**
   * Delivers `frame` if it is the next one (then any buffered frames that follow it), drops it if already delivered,
   * and buffers it if it is ahead.
   * @param {any} frame
   * @private
   */
  _acceptFrame(frame) {
    const n = frame?.frame_count;
    if (!Number.isSafeInteger(n) || n < this.nextFrame) return;
    if (n > this.nextFrame) {
      this._buffer.set(n, frame);
      return;
    }
    this._deliver(frame);
    this._drainBuffer();
  }

  /**
   * @param {any} frame
   * @private
   */
  _deliver(frame) {
    this._buffer.delete(frame.frame_count);
    this.nextFrame = frame.frame_count + 1;
    this.emit('frame', frame);
  }

  /** @private */
  _drainBuffer() {
    for (;;) {
      const next = this._buffer.get(this.nextFrame);
      if (next === undefined) break;
      this._buffer.delete(this.nextFrame);
      if (this._done) break;
      this._deliver(next);
    }
  }

  /** Asks for the frames from nextFrame on, unless a reload is already in flight. @private */
  _startReload() {
    if (this._reload || !this._conn) return;
    const from = this.nextFrame;
    try {
      this._conn.requestReload(from);
    } catch {
      return; // The connection is going away; the reconnect reloads.
    }
    this._lastSentAt = Date.now();
    const timer = setTimeout(() => {
      if (this._reload?.timer !== timer) return;
      this._reload = null;
      this._skipGap('timeout', `the reload from frame ${from} did not finish in time`);
    }, this.policy.reloadTimeoutMs);
    this._reload = { from, timer };
  }

  /** @private */
  _clearReload() {
    if (this._reload) clearTimeout(this._reload.timer);
    this._reload = null;
  }

  /**
   * @param {any} chunk
   * @private
   */
  _onReloadChunk(chunk) {
    for (const frame of chunk?.frames ?? []) {
      if (this._done) return;
      this._acceptFrame(frame);
    }
    if (!chunk?.last || !this._reload) return;
    const { from } = this._reload;
    this._clearReload();
    if (this._buffer.size === 0) return;
    // Still a gap: ask again if this reload made progress, otherwise deliver what we have.
    if (this.nextFrame > from) this._startReload();
    else this._skipGap('protocol', `the reload from frame ${from} did not fill the gap`);
  }

  /**
   * Gives up on the missing frames: reports them, then delivers the buffered frames from the first one on, rather
   * than stall the game forever.
   * @param {string} code
   * @param {string} why
   * @param {string|null} [proto]
   * @private
   */
  _skipGap(code, why, proto = null) {
    if (this._buffer.size === 0) return;
    const first = Math.min(...this._buffer.keys());
    this.emit('error', {
      code,
      message: `frames ${this.nextFrame}..${first} are missing and the reload failed: ${why}`,
      proto,
    });
    this.nextFrame = first;
    this._drainBuffer();
  }

  // ---- errors, drops, reconnects ----

  /**
   * @param {{code: string, message: string, proto: string|null}} err
   * @private
   */
  _onServerError(err) {
    if (err.proto === SPECTATE_PROTO && this._watching !== null) {
      if (err.code === 'already_in_room') {
        this._watching = this._watchingBefore; // Refused: whatever was watched before still is.
      } else {
        // Not watching: the room is gone (its game ended, maybe while we were away), full, or the request was bad.
        this._watching = null;
        if (err.code === 'room_not_found') this._resetGame();
      }
    }
    if (err.proto === RELOAD_PROTO && this._reload) {
      this._clearReload();
      if (err.code === 'not_in_room') {
        // The grace period ran out and the game went on without us (or it is over).
        this._resetGame();
        this.emit('error', err);
        return;
      }
      if (this._buffer.size > 0) {
        this._skipGap(err.code, err.message, err.proto);
        return;
      }
    }
    this.emit('error', err);
  }

  /**
   * @param {import('./sync.js').CloseInfo} info
   * @private
   */
  _onDrop(info) {
    this._conn = null;
    this._clearReload();
    if (this._done) return;
    const last = info.lastError;
    if (last && isFinalCode(last.code)) {
      this._end(new MovanError(last.message || `the server closed the connection: ${last.code}`, {
        code: last.code,
        proto: last.proto,
      }));
      return;
    }
    if (info.error?.code === 'crypto' || !this.policy.enabled) {
      this._end(info.error);
      return;
    }
    const error = info.error?.message ?? describeClose(info);
    this._reconnect = {
      attempt: 1,
      delay: this.policy.initialDelayMs,
      giveUpAt: Date.now() + this.policy.giveUpAfterMs,
    };
    this.emit('reconnecting', { attempt: 1, error });
    this._scheduleAttempt();
  }

  /** @private */
  _scheduleAttempt() {
    const state = this._reconnect;
    if (!state || this._done) return;
    state.timer = setTimeout(() => {
      this._attempt().catch((e) => this._end(e instanceof MovanError ? e : new MovanError(String(e))));
    }, state.delay);
  }

  /** One reconnect attempt; on failure schedules the next one or gives up. @private */
  async _attempt() {
    const state = this._reconnect;
    if (!state || this._done) return;
    /** @type {MovanError|null} */
    let failure = null;
    let conn = null;
    try {
      conn = await this._tryConnect(state);
    } catch (e) {
      failure = e instanceof MovanError ? e : new MovanError(String(e), { cause: e });
      if (failure.code === 'token_expired' && this._opts.account && !this._done) {
        try {
          this.session = await this._opts.account.refresh(this.session.refresh_token);
          this.emit('session', this.session);
          conn = await this._tryConnect(state);
          failure = null;
        } catch (e2) {
          failure = e2 instanceof MovanError ? e2 : new MovanError(String(e2), { cause: e2 });
        }
      }
    }
    if (this._done || this._reconnect !== state) {
      conn?.close();
      return;
    }
    if (conn) {
      this._conn = conn;
      this._reconnect = null;
      this._lastSentAt = Date.now();
      const reloadFrom = this.game ? this.nextFrame : null;
      this.emit('reconnected', { attempts: state.attempt, reloadFrom });
      if (this._conn !== conn) return;
      if (this._watching !== null) this._watchAgain(conn, this._watching);
      else if (this.game) this._startReload();
      return;
    }
    const err = /** @type {MovanError} */ (failure);
    if (err.code === 'crypto' || isFinalCode(err.code) || Date.now() + state.delay >= state.giveUpAt) {
      this._end(err);
      return;
    }
    state.attempt += 1;
    state.delay = Math.min(state.delay * 2, this.policy.maxDelayMs);
    this.emit('reconnecting', { attempt: state.attempt, error: err.message });
    this._scheduleAttempt();
  }

  /**
   * A spectator has no seat to rebind: watch again. The answer repeats the `game_start` (swallowed as a repeat), the
   * history from its oldest frame (the delivered ones are dropped as duplicates), then the live frames.
   * @param {SyncConnection} conn
   * @param {string} roomId
   * @private
   */
  _watchAgain(conn, roomId) {
    try {
      conn.spectate(roomId);
      this._watchingBefore = null;
      this._lastSentAt = Date.now();
    } catch {
      // The connection is going away already; the next reconnect watches again.
    }
  }

  /**
   * @param {{giveUpAt: number}} state
   * @returns {Promise<SyncConnection>}
   * @private
   */
  async _tryConnect(state) {
    const left = Math.max(1000, state.giveUpAt - Date.now());
    const conn = this._newConnection(Math.min(this._opts.handshakeTimeoutMs ?? 30_000, left));
    await conn.open();
    return conn;
  }

  /**
   * @param {MovanError|null} error
   * @private
   */
  _end(error) {
    if (this._done) return;
    this._done = true;
    clearInterval(this._keepalive);
    this._clearReload();
    if (this._reconnect?.timer !== undefined) clearTimeout(this._reconnect.timer);
    this._reconnect = null;
    const conn = this._conn;
    this._conn = null;
    conn?.close();
    this.closeInfo = { error };
    this.emit('close', this.closeInfo);
    this._resolveClosed(this.closeInfo);
  }
}
