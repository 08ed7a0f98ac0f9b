// One WebSocket connection to the sync server: the connection sequence (token, handshake, sealing), requests, and
// server messages as events.
//
// Transport: `ws://HOST:PORT/ws`. One binary WebSocket message is one frame BODY: the TCP 4-byte length prefix is not
// sent, the message boundary replaces it. Sealed bodies are exactly the TCP sealed frame minus its prefix, so the AAD
// is still the 4-byte big-endian length of that body (docs/encryption.md §5).

import { closeCodeWords } from './close.js';
import { clientSide, parseHandshake, TAG_LEN } from './crypto.js';
import { Emitter } from './emitter.js';
import { MovanError } from './errors.js';

/** Longest wait for the handshake and the `pong`s after the WebSocket opened, like the Rust SDK. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;
/** The server's default `sync.max_frame_bytes`: the largest client message body (sealed length) it accepts. */
export const DEFAULT_MAX_FRAME_BYTES = 65536;
/** The proto of a reload request. */
export const RELOAD_PROTO = 'sync_request_reload_frames';

/** Server protos that get their own event; any other proto is only seen through `message`. */
const KNOWN_EVENTS = new Set([
  'room_state',
  'room_left',
  'game_start',
  'sync_frame',
  'reload_frames',
  'game_over',
  'pong',
  'desync',
  'error',
]);
/** WebSocket readyState values (the same in browsers and in `ws`). */
const OPEN = 1;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** The current time as the protocol's `timestamp`: seconds since the Unix epoch. */
export function unixNow() {
  return Date.now() / 1000;
}

/**
 * The JSON body of one client message (docs/protocol.md §4). `timestamp` is left out when `null`.
 *
 * @param {string} uid
 * @param {{proto: string, timestamp?: number|null, data?: unknown, action_data?: unknown}} extra
 * @param {string} [token] only on the first message
 * @returns {string}
 */
export function encodeEnvelope(uid, extra, token) {
  /** @type {Record<string, unknown>} */
  const extraData = { proto: extra.proto };
  if (extra.timestamp != null) extraData.timestamp = extra.timestamp;
  if (extra.data !== undefined) extraData.data = extra.data;
  if (extra.action_data !== undefined) extraData.action_data = extra.action_data;
  /** @type {Record<string, unknown>} */
  const env = { uid };
  if (token != null) env.token = token;
  env.extra_data = extraData;
  return JSON.stringify(env);
}

/**
 * @typedef {object} ConnectOptions
 * @property {string} url the sync server's WebSocket URL, `ws://HOST:2028/ws` (or `wss://...`)
 * @property {string} uid the login's `uid`
 * @property {string} token the login's access token (sent once, on the plaintext first message)
 * @property {string|Uint8Array|null} [sessionKey] the login's `session_key`; required unless the server runs with
 *   `encryption = "off"`
 * @property {any} [WebSocket] a WebSocket constructor (default `globalThis.WebSocket`); inject one in Node < 22
 * @property {number} [handshakeTimeoutMs] default {@link HANDSHAKE_TIMEOUT_MS}
 * @property {number} [maxFrameBytes] the server's `sync.max_frame_bytes`: larger messages are refused before sending
 */

/**
 * @typedef {object} CloseInfo
 * @property {number} code the WebSocket close code (1006 when the socket just went away)
 * @property {string} reason the WebSocket close reason
 * @property {MovanError|null} error why this client closed it (crypto or protocol failure), else `null`
 * @property {{code: string, message: string, proto: string|null}|null} lastError the last `error` the server sent
 *   on this connection, typically the reason it closed (`replaced`, `shutting_down`, ...)
 *
 * `describeClose(info)` (src/close.js) puts it in words: `connection closed: no status (1005) after the server's
 * error timeout: ...`.
 */

/**
 * One connection to the sync server. Events (`on(name, fn)`), each with the message's `data` and the whole
 * message as a second argument (`{proto, data, raw}`, `raw` the JSON text):
 *
 * - `room_state`, `room_left` (`{room_id}`: the answer to `room_leave`; with `reason` and `message` when the
 *   server closed the waiting room), `game_start`, `sync_frame`, `reload_frames`, `game_over`, `pong`, `error`
 *   (`{code, message, proto}`)
 * - `message`: every server message after the handshake, unknown protos included (`(msg)`)
 * - `close`: once, when the connection ended ({@link CloseInfo})
 *
 * Use {@link SyncConnection.connect}, or `new SyncConnection(opts)`, attach listeners, then `await conn.open()`.
 * Messages that arrive during the connection sequence (a `room_state` and `game_start` when rejoining a running game)
 * are held and delivered, in order, on the task right after `open()`/`connect()` resolved, so listeners attached
 * immediately after the `await` see them.
 */
export class SyncConnection extends Emitter {
  /**
   * Connects and completes the connection sequence (docs/protocol.md §4.1): a plaintext `ping` carrying the token,
   * the server's plaintext `handshake`, then (with encryption) a sealed `ping` proving the session key, and the
   * `pong` of each ping (consumed). Every later message is sealed both ways unless the server announced
   * `"cipher":"none"`.
   *
   * Rejects with a {@link MovanError}: the server's code when it refused the first message (`bad_token`,
   * `token_expired`, `session_revoked`, `banned`, `too_many_connections`, ...), `crypto` (bad session key, unknown
   * cipher, bad salt, encryption required but no key), `closed`, `network` or `timeout`.
   *
   * @param {ConnectOptions} opts
   * @returns {Promise<SyncConnection>}
   */
  static async connect(opts) {
    const conn = new SyncConnection(opts);
    await conn.open();
    return conn;
  }

  /** @param {ConnectOptions} opts */
  constructor(opts) {
    super();
    if (!opts || typeof opts.url !== 'string') throw new TypeError('SyncConnection: url is required');
    if (typeof opts.uid !== 'string' || opts.uid === '') throw new TypeError('SyncConnection: uid is required');
    if (typeof opts.token !== 'string') throw new TypeError('SyncConnection: token is required');
    /** @readonly */
    this.url = opts.url;
    /** @readonly */
    this.uid = opts.uid;
    /** @private */
    this._token = opts.token;
    /** @private */
    this._sessionKey = opts.sessionKey ?? null;
    /** @private */
    this._WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    /** @private */
    this._handshakeTimeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    /** @private */
    this._maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    /** @type {any} @private */
    this._ws = null;
    /** @type {'new'|'opening'|'handshake'|'plaintext'|'sealed'|'closed'} @private */
    this._stage = 'new';
    /** @type {import('./crypto.js').Sealer|null} @private */
    this._sealer = null;
    /** @type {import('./crypto.js').Opener|null} @private */
    this._opener = null;
    /** @type {Array<[string, ...any[]]>} events held until open() resolved @private */
    this._held = [];
    /** @private */
    this._holding = true;
    /** @private */
    this._pongsToConsume = 0;
    /** @type {MovanError|null} @private */
    this._failure = null;
    /** @type {CloseInfo['lastError']} @private */
    this._lastError = null;
    /** @type {((e: MovanError|null) => void)|null} settles open() @private */
    this._settle = null;
    /** @private */
    this._opened = false;
    /** @private */
    this._openFailed = false;
    /** @type {'pending'|'sealed'|'plaintext'} @private */
    this._mode = 'pending';
    /** @type {ReturnType<typeof setTimeout>|undefined} @private */
    this._closeFallback = undefined;
    /** @type {CloseInfo|null} */
    this.closeInfo = null;
    /** @type {Promise<CloseInfo>} resolves once the connection ended, right after the `close` event */
    this.closed = new Promise((resolve) => {
      /** @private */
      this._resolveClosed = resolve;
    });
  }

  /** `'sealed'` or `'plaintext'` once open, as the server's handshake decided; `'pending'` before. */
  get encryption() {
    return this._mode;
  }

  /** True while messages can be sent. */
  get isOpen() {
    return (this._stage === 'sealed' || this._stage === 'plaintext') && this._ws?.readyState === OPEN;
  }

  /**
   * Opens the WebSocket and runs the connection sequence; see {@link SyncConnection.connect}.
   * @returns {Promise<void>}
   */
  open() {
    if (this._stage !== 'new') return Promise.reject(new MovanError('open() was already called', { code: 'closed' }));
    this._stage = 'opening';
    const WS = this._WebSocket;
    if (typeof WS !== 'function') {
      this._stage = 'closed';
      return Promise.reject(
        new MovanError('no WebSocket implementation: pass one as the WebSocket option', { code: 'network' }),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._fail(new MovanError('the sync server did not complete the handshake in time', { code: 'timeout' }));
      }, this._handshakeTimeoutMs);
      this._settle = (err) => {
        this._settle = null;
        clearTimeout(timer);
        if (err) {
          this._openFailed = true;
          this._held = [];
          reject(err);
          return;
        }
        resolve();
        // Deliver what arrived during the sequence on the next task, after the caller attached its listeners.
        setTimeout(() => this._flushHeld(), 0);
      };
      let ws;
      try {
        ws = new WS(this.url);
      } catch (e) {
        this._stage = 'closed';
        this._settle(new MovanError(`cannot open ${this.url}: ${/** @type {Error} */ (e).message}`, {
          code: 'network',
          cause: e,
        }));
        return;
      }
      this._ws = ws;
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => this._onOpen();
      ws.onmessage = (/** @type {{data: unknown}} */ ev) => this._onMessage(ev.data);
      ws.onerror = () => {
        // Browsers give no details; the close event follows.
      };
      ws.onclose = (/** @type {{code?: number, reason?: string}} */ ev) => this._onClose(ev?.code ?? 1006, ev?.reason ?? '');
    });
  }

  /** @private */
  _onOpen() {
    if (this._stage !== 'opening') return;
    this._opened = true;
    this._stage = 'handshake';
    this._pongsToConsume = 1;
    try {
      // The first message is plaintext and carries the token.
      this._sendRaw(utf8Encoder.encode(encodeEnvelope(this.uid, { proto: 'ping', timestamp: unixNow() }, this._token)));
    } catch (e) {
      this._fail(/** @type {MovanError} */ (e));
    }
  }

  /**
   * @param {unknown} data
   * @private
   */
  _onMessage(data) {
    if (this._stage === 'closed') return;
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else if (typeof data === 'string') bytes = utf8Encoder.encode(data);
    else {
      this._fail(new MovanError('the sync server sent a message of an unexpected type', { code: 'protocol' }));
      return;
    }
    if (this._stage === 'sealed') {
      try {
        bytes = /** @type {import('./crypto.js').Opener} */ (this._opener).openBody(bytes);
      } catch (e) {
        this._fail(/** @type {MovanError} */ (e));
        return;
      }
    }
    let raw;
    let msg;
    try {
      raw = utf8Decoder.decode(bytes);
      msg = JSON.parse(raw);
    } catch {
      this._fail(new MovanError('the sync server sent a message that is not UTF-8 JSON', { code: 'protocol' }));
      return;
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.proto !== 'string') {
      this._fail(new MovanError('the sync server sent a message without a proto', { code: 'protocol' }));
      return;
    }
    const message = { proto: msg.proto, data: msg.data, raw };
    if (this._stage === 'handshake') {
      this._onHandshake(message);
      return;
    }
    if (message.proto === 'error') {
      const d = message.data ?? {};
      this._lastError = { code: String(d.code ?? ''), message: String(d.message ?? ''), proto: d.proto ?? null };
      message.data = this._lastError;
    }
    if (this._settle) {
      // Still in the connection sequence: consume the pongs of the connect pings; an error means refusal.
      if (message.proto === 'pong' && this._pongsToConsume > 0) {
        this._pongsToConsume -= 1;
        if (this._pongsToConsume === 0) this._settle(null);
        return;
      }
      if (message.proto === 'error' && this._lastError) {
        this._fail(serverError(this._lastError), false);
        return;
      }
    }
    this._deliver('message', message);
  }

  /**
   * @param {{proto: string, data: any, raw: string}} message
   * @private
   */
  _onHandshake(message) {
    if (message.proto === 'error') {
      // A refused first message is answered in plaintext, then the server closes.
      const d = message.data ?? {};
      this._lastError = { code: String(d.code ?? ''), message: String(d.message ?? ''), proto: d.proto ?? null };
      this._fail(serverError(this._lastError), false);
      return;
    }
    if (message.proto !== 'handshake') {
      this._fail(
        new MovanError(`expected the server's handshake, got ${JSON.stringify(message.proto)}`, { code: 'crypto' }),
      );
      return;
    }
    try {
      const hs = parseHandshake(message.data);
      if (hs.cipher === 'none') {
        this._stage = 'plaintext';
        this._mode = 'plaintext';
        return;
      }
      if (this._sessionKey == null) {
        throw new MovanError('the server requires encryption but no sessionKey was given', { code: 'crypto' });
      }
      const { sealer, opener } = clientSide(this._sessionKey, hs.salt);
      this._sealer = sealer;
      this._opener = opener;
      this._stage = 'sealed';
      this._mode = 'sealed';
      // The server runs the first request only once a sealed frame proves that we hold the session key.
      this._pongsToConsume += 1;
      this.ping();
    } catch (e) {
      this._fail(/** @type {MovanError} */ (e));
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @private
   */
  _onClose(code, reason) {
    if (this.closeInfo) return;
    clearTimeout(this._closeFallback);
    const proving = this._stage === 'sealed' && this._settle !== null;
    this._stage = 'closed';
    this.closeInfo = { code, reason, error: this._failure, lastError: this._lastError };
    if (this._settle) {
      const words = `${closeCodeWords(code)} (${code})${reason ? `: ${reason}` : ''}`;
      const err =
        this._failure ??
        (this._lastError
          ? serverError(this._lastError)
          : new MovanError(
              proving
                ? 'the sync server closed the connection after the first sealed frame: wrong session key?'
                : this._opened
                  ? `the sync server closed the connection before the session was ready: ${words}`
                  : `cannot connect to ${this.url}: ${words}`,
              { code: this._opened ? 'closed' : 'network' },
            ));
      this._settle(err);
    }
    if (this._openFailed) {
      // open() rejected: the connection never existed for the caller, so no events.
      this._resolveClosed(this.closeInfo);
      return;
    }
    this._deliver('close', this.closeInfo);
  }

  /**
   * Fails the connection: records why, closes the socket, and ends open() if it is running.
   * @param {MovanError} err
   * @param {boolean} [isFailure] false for a server refusal (recorded as lastError, not as this client's failure)
   * @private
   */
  _fail(err, isFailure = true) {
    if (this._stage === 'closed') return;
    if (isFailure && !this._failure) this._failure = err;
    if (this._settle) this._settle(err);
    this._stage = 'closed';
    try {
      this._ws?.close();
    } catch {
      // Already closing.
    }
    // Report the close ourselves: a socket that never opened, or a mock, may not fire `close`.
    this._onClose(1000, err.message.slice(0, 120));
  }

  /**
   * @param {string} event
   * @param {...any} args
   * @private
   */
  _deliver(event, ...args) {
    if (this._holding || this._held.length > 0) {
      this._held.push([event, ...args]);
      return;
    }
    this._dispatch(event, ...args);
  }

  /** @private */
  _flushHeld() {
    this._holding = false;
    while (this._held.length > 0) {
      const [event, ...args] = /** @type {[string, ...any[]]} */ (this._held.shift());
      this._dispatch(event, ...args);
    }
  }

  /**
   * @param {string} event
   * @param {...any} args
   * @private
   */
  _dispatch(event, ...args) {
    if (event === 'message') {
      const message = args[0];
      this.emit('message', message);
      if (KNOWN_EVENTS.has(message.proto)) this.emit(message.proto, message.data, message);
      return;
    }
    this.emit(event, ...args);
    if (event === 'close') this._resolveClosed(args[0]);
  }

  /**
   * Sends `bytes` as one WebSocket message, sealing first when encrypted.
   * @param {Uint8Array} plaintext
   * @private
   */
  _sendRaw(plaintext) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN || this._stage === 'closed') {
      throw new MovanError('the sync connection is closed', { code: 'closed' });
    }
    const sealedLen = plaintext.length + (this._sealer ? TAG_LEN : 0);
    if (sealedLen > this._maxFrameBytes) {
      throw new MovanError(`a ${sealedLen}-byte message is above the server's ${this._maxFrameBytes}-byte limit`, {
        code: 'too_large',
      });
    }
    let body = plaintext;
    if (this._sealer) {
      try {
        body = this._sealer.sealBody(plaintext);
      } catch (e) {
        this._fail(/** @type {MovanError} */ (e));
        throw e;
      }
    }
    ws.send(body);
  }

  /**
   * Sends any proto in the normal envelope, stamped with the current time unless `extra.timestamp` is given.
   * Throws a {@link MovanError} (`closed`, `too_large`) instead of sending.
   *
   * @param {string} proto
   * @param {{data?: unknown, action_data?: unknown, timestamp?: number|null}} [extra]
   */
  send(proto, extra = {}) {
    if (this._stage === 'handshake') {
      throw new MovanError('wait for the handshake before sending', { code: 'closed' });
    }
    const timestamp = extra.timestamp === undefined ? unixNow() : extra.timestamp;
    this._sendRaw(
      utf8Encoder.encode(encodeEnvelope(this.uid, { proto, timestamp, data: extra.data, action_data: extra.action_data })),
    );
  }

  /**
   * `room_enter`: joins `roomId` (created when missing), or quick-matches when `null`/omitted.
   * @param {string|null} [roomId]
   */
  enterRoom(roomId = null) {
    this.send('room_enter', roomId == null ? {} : { data: { room_id: roomId } });
  }

  /** `room_leave`: answered by a `room_left` event (or an `error` `not_in_room`); close after it to leave cleanly. */
  leaveRoom() {
    this.send('room_leave');
  }

  /** `room_prepare`: marks the player ready. */
  prepare() {
    this.send('room_prepare');
  }

  /**
   * `sync_action`: an input for the next frame.
   * @param {object} actionData a JSON object
   * @param {number} [timestamp] Unix seconds (default: now)
   */
  sendAction(actionData, timestamp = unixNow()) {
    this.send('sync_action', { action_data: actionData, timestamp });
  }

  /** `ping`, stamped with the current time (echoed in the `pong`). */
  ping() {
    this.send('ping');
  }

  /**
   * `room_spectate`: watch `roomId` without playing. `room_state` counts spectators; in a running game `game_start`
   * and the history (`reload_frames`) follow, then every `sync_frame`, `sync.spectator_delay_frames` behind the players.
   * @param {string} roomId
   */
  spectate(roomId) {
    if (typeof roomId !== 'string' || roomId === '') throw new TypeError('spectate: roomId is a non-empty string');
    this.send('room_spectate', { data: { room_id: roomId } });
  }

  /**
   * `sync_checksum`: your hash of the game state after applying `frame`, a multiple of `game_start.checksum_interval`.
   * When the members' hashes differ, each gets a `desync` event (`{frame, groups: [{hash, uids}], majority}`).
   * @param {number} frame
   * @param {string} hash 1 to 64 bytes of UTF-8 (e.g. 16 hex digits)
   */
  sendChecksum(frame, hash) {
    if (!Number.isSafeInteger(frame) || frame < 0) {
      throw new TypeError('sendChecksum: frame is a non-negative integer');
    }
    const bytes = typeof hash === 'string' ? new TextEncoder().encode(hash).length : 0;
    if (bytes < 1 || bytes > 64) throw new TypeError('sendChecksum: hash is a string of 1 to 64 bytes');
    this.send('sync_checksum', { data: { frame, hash } });
  }

  /**
   * `sync_request_reload_frames` from `startFrame`; the answer arrives as `reload_frames` events.
   * @param {number} startFrame
   */
  requestReload(startFrame) {
    if (!Number.isSafeInteger(startFrame) || startFrame < 0) {
      throw new TypeError('requestReload: startFrame is a non-negative integer');
    }
    this.send(RELOAD_PROTO, { data: { start_frame: startFrame } });
  }

  /**
   * Closes the connection. The server keeps the player's seat for `sync.reconnect_grace_secs`, then it leaves as with
   * `room_leave`; call {@link SyncConnection#leaveRoom} first to give the seat up at once.
   * @returns {Promise<CloseInfo>}
   */
  close() {
    if (this._stage !== 'closed') {
      if (this._settle) this._settle(new MovanError('closed by the client', { code: 'closed' }));
      this._stage = 'closed';
      try {
        this._ws?.close(1000);
      } catch {
        // Already closing.
      }
      // Some implementations never fire `close` for a socket that was still connecting.
      this._closeFallback = setTimeout(() => this._onClose(1000, 'closed by the client'), 1000);
    }
    return this.closed;
  }
}

/**
 * @param {{code: string, message: string, proto: string|null}} e
 * @returns {MovanError}
 */
function serverError(e) {
  return new MovanError(e.message || `sync server error ${e.code}`, { code: e.code, proto: e.proto });
}
