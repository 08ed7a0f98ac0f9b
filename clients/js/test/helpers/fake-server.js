// An in-process fake of the Movan sync server's WebSocket endpoint, for tests: a mock WebSocket class (injected into
// the client) wired to a server side that speaks the protocol. The server side does its crypto with node:crypto
// (HKDF and ChaCha20-Poly1305 from OpenSSL), independently of the client's @noble code, so a passing test also
// cross-checks the client's key derivation, nonces and AAD.

import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** Runs `fn` on a later macrotask, preserving order (like a socket delivering bytes). */
const later = (fn) => setImmediate(fn);

/**
 * The network: hands out a WebSocket constructor and tells the server about every new connection.
 */
export class FakeNetwork {
  /** @param {(conn: ServerSocket) => void} onConnection */
  constructor(onConnection) {
    this.onConnection = onConnection;
    /** @type {ServerSocket[]} */
    this.connections = [];
    /** When true, new connections fail (no `open`, then `close` 1006), like an unreachable host. */
    this.down = false;
    /** Every URL a client tried. */
    this.attempts = [];
    const network = this;
    /** The constructor to inject as the `WebSocket` option. */
    this.WebSocket = class FakeWebSocket {
      static CONNECTING = CONNECTING;
      static OPEN = OPEN;
      static CLOSING = CLOSING;
      static CLOSED = CLOSED;

      /** @param {string} url */
      constructor(url) {
        this.url = url;
        this.readyState = CONNECTING;
        this.binaryType = 'blob';
        this.onopen = null;
        this.onmessage = null;
        this.onclose = null;
        this.onerror = null;
        /** @type {ServerSocket|null} */
        this.peer = null;
        network.attempts.push(url);
        if (network.down) {
          later(() => {
            this.readyState = CLOSED;
            this.onerror?.({ type: 'error' });
            this.onclose?.({ code: 1006, reason: '' });
          });
          return;
        }
        const server = new ServerSocket(this);
        this.peer = server;
        network.connections.push(server);
        later(() => {
          if (this.readyState !== CONNECTING) return;
          this.readyState = OPEN;
          network.onConnection(server);
          this.onopen?.({ type: 'open' });
        });
      }

      /** @param {Uint8Array|ArrayBuffer|string} data */
      send(data) {
        if (this.readyState !== OPEN) throw new Error('InvalidStateError: not open');
        const copy = typeof data === 'string' ? data : new Uint8Array(data instanceof ArrayBuffer ? data.slice(0) : data);
        const peer = this.peer;
        later(() => peer?._receive(copy));
      }

      /**
       * @param {number} [code]
       * @param {string} [reason]
       */
      close(code = 1000, reason = '') {
        if (this.readyState === CLOSED || this.readyState === CLOSING) return;
        if (code !== 1000 && (code < 3000 || code > 4999)) throw new Error('InvalidAccessError: bad close code');
        this.readyState = CLOSING;
        const peer = this.peer;
        later(() => {
          this._closed(code, reason);
          peer?._closedByClient(code, reason);
        });
      }

      /** @param {Uint8Array|string} data */
      _deliver(data) {
        if (this.readyState !== OPEN) return;
        /** @type {any} */
        let payload = data;
        if (typeof data !== 'string') {
          // Browsers hand out a fresh ArrayBuffer with binaryType 'arraybuffer'.
          if (this.binaryType !== 'arraybuffer') throw new Error('test expects binaryType arraybuffer');
          payload = new Uint8Array(data).buffer; // a copy of exactly these bytes
        }
        this.onmessage?.({ data: payload });
      }

      /**
       * @param {number} code
       * @param {string} reason
       */
      _closed(code, reason) {
        if (this.readyState === CLOSED) return;
        this.readyState = CLOSED;
        this.onclose?.({ code, reason, wasClean: code !== 1006 });
      }
    };
  }
}

/** The server's end of one fake WebSocket. */
export class ServerSocket {
  /** @param {any} client */
  constructor(client) {
    this.client = client;
    this.closed = false;
    /** @type {(data: Uint8Array|string) => void} */
    this.onmessage = () => {};
    /** @type {(code: number, reason: string) => void} */
    this.onclose = () => {};
  }

  /** @param {Uint8Array|string} data */
  send(data) {
    if (this.closed) return;
    const copy = typeof data === 'string' ? data : new Uint8Array(data);
    later(() => this.client._deliver(copy));
  }

  /** Closes cleanly after what was sent (like a server close). */
  close(code = 1000, reason = '') {
    if (this.closed) return;
    this.closed = true;
    later(() => {
      this.client._closed(code, reason);
      this.onclose(code, reason);
    });
  }

  /** The network drops: the client sees 1006 with no close frame. */
  drop() {
    this.close(1006, '');
  }

  /** @param {Uint8Array|string} data */
  _receive(data) {
    if (!this.closed) this.onmessage(data);
  }

  _closedByClient(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.onclose(code, reason);
  }
}

// ---- crypto with node:crypto ----

const te = new TextEncoder();
const td = new TextDecoder();

/**
 * @param {Uint8Array} sessionKey
 * @param {Uint8Array} salt
 * @param {string} info
 * @returns {Buffer}
 */
export function nodeHkdf(sessionKey, salt, info) {
  return Buffer.from(hkdfSync('sha256', sessionKey, salt, Buffer.from(info), 32));
}

/** @param {bigint} counter */
function nonce(counter) {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(counter, 4);
  return n;
}

/** @param {number} len */
function prefix(len) {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(len);
  return p;
}

/** Seals a body the way docs/encryption.md §5 says, minus the prefix (what one WebSocket message carries). */
export function nodeSealBody(key, counter, plaintext) {
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  c.setAAD(prefix(plaintext.length + 16), { plaintextLength: plaintext.length });
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([ct, c.getAuthTag()]);
}

/** Opens a sealed body; throws on a bad tag. */
export function nodeOpenBody(key, counter, body) {
  if (body.length < 16) throw new Error('too short');
  const d = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  d.setAAD(prefix(body.length), { plaintextLength: body.length - 16 });
  d.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
}

// ---- the protocol ----

/**
 * A fake sync server. Options:
 * - `encryption`: `'sealed'` (default) or `'none'`
 * - `sessionKey`: the 32 key bytes the server expects (default 0x00..0x1f)
 * - `salt`: fixed 32 bytes, or a function returning fresh ones (default fresh, 0x20.. + connection number)
 * - `handshake`: a custom handshake body sent instead of the real one (then nothing else happens)
 * - `auth(first)`: returns an error `{code, message}` to refuse the first message, or null
 * - `onBind(conn)`: called when a connection is bound (after the first sealed frame), before the pongs
 * - `onRequest(conn, env)`: called for every later message; default answers `ping` with `pong`
 */
export class FakeSyncServer {
  constructor(opts = {}) {
    this.opts = opts;
    this.encryption = opts.encryption ?? 'sealed';
    this.sessionKey = opts.sessionKey ?? Uint8Array.from({ length: 32 }, (_, i) => i);
    this.network = new FakeNetwork((socket) => this._accept(socket));
    this.WebSocket = this.network.WebSocket;
    /** @type {Conn[]} */
    this.conns = [];
    this.url = 'ws://127.0.0.1:2028/ws';
  }

  /** The newest connection. */
  get last() {
    return this.conns[this.conns.length - 1];
  }

  /** Connections bound (authenticated) so far. */
  get bound() {
    return this.conns.filter((c) => c.bound);
  }

  /** @param {ServerSocket} socket */
  _accept(socket) {
    const n = this.conns.length;
    let salt = this.opts.salt;
    if (typeof salt === 'function') salt = salt(n);
    salt ??= Uint8Array.from({ length: 32 }, (_, i) => (0x20 + i + n) & 0xff);
    this.conns.push(new Conn(this, socket, Buffer.from(salt)));
  }
}

/** One server-side connection. */
export class Conn {
  /**
   * @param {FakeSyncServer} server
   * @param {ServerSocket} socket
   * @param {Buffer} salt
   */
  constructor(server, socket, salt) {
    this.server = server;
    this.socket = socket;
    this.salt = salt;
    /** @type {'first'|'proof'|'bound'|'closed'} */
    this.stage = 'first';
    this.bound = false;
    /** Every client message, decoded: `{env, sealed, bodyLength}`. */
    this.received = [];
    /** Bodies as they came off the wire. */
    this.rawReceived = [];
    this.c2s = 0n;
    this.s2c = 0n;
    this.firstEnv = null;
    const key = server.sessionKey;
    this.keyC2S = nodeHkdf(key, salt, 'movan/v1/client-to-server');
    this.keyS2C = nodeHkdf(key, salt, 'movan/v1/server-to-client');
    this.closeCode = null;
    this.openFailed = false;
    socket.onmessage = (data) => this._onMessage(data);
    socket.onclose = (code) => {
      this.stage = 'closed';
      this.closeCode = code;
    };
  }

  get sealed() {
    return this.server.encryption === 'sealed';
  }

  /** Sends a server message (sealed once the handshake switched encryption on). */
  send(msg) {
    const body = Buffer.from(typeof msg === 'string' ? msg : JSON.stringify(msg));
    this.sendBody(body);
  }

  /** @param {Buffer} body plaintext JSON bytes */
  sendBody(body) {
    if (this.sealed && this.stage !== 'first') {
      this.socket.send(nodeSealBody(this.keyS2C, this.s2c, body));
      this.s2c += 1n;
    } else {
      this.socket.send(body);
    }
  }

  /** Sends raw bytes as one message, no sealing. */
  sendRaw(bytes) {
    this.socket.send(bytes);
  }

  /** Sends `error` then closes, as the server does for final errors. */
  sendErrorAndClose(code, message = code, proto = null) {
    this.send({ proto: 'error', data: { code, message, proto } });
    this.socket.close(1000, '');
  }

  drop() {
    this.socket.drop();
  }

  /** @param {Uint8Array|string} data */
  _onMessage(data) {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    this.rawReceived.push(bytes);
    let plain = bytes;
    let sealed = false;
    if (this.sealed && this.stage !== 'first') {
      try {
        plain = nodeOpenBody(this.keyC2S, this.c2s, bytes);
      } catch {
        // A frame that does not open closes the connection without a message.
        this.openFailed = true;
        this.socket.close(1000, '');
        return;
      }
      this.c2s += 1n;
      sealed = true;
    }
    const env = JSON.parse(td.decode(plain));
    this.received.push({ env, sealed, bodyLength: bytes.length });
    if (this.stage === 'first') {
      this._first(env);
      return;
    }
    if (this.stage === 'proof') {
      this._bind();
      this._answer(this.firstEnv);
      this._answer(env);
      return;
    }
    this._answer(env);
  }

  _first(env) {
    const refusal = env.token ? this.server.opts.auth?.(env) : { code: 'unauthenticated', message: 'no token' };
    if (refusal) {
      this.sendErrorAndClose(refusal.code, refusal.message ?? refusal.code, env.extra_data?.proto ?? null);
      return;
    }
    this.firstEnv = env;
    if (this.server.opts.handshake !== undefined) {
      // A custom (broken) handshake, sent as is.
      this.sendRaw(Buffer.from(this.server.opts.handshake));
      return;
    }
    if (this.sealed) {
      const salt = this.salt.toString('base64');
      this.send(`{"proto":"handshake","data":{"salt":"${salt}","cipher":"chacha20poly1305"}}`);
      this.stage = 'proof';
    } else {
      this.send('{"proto":"handshake","data":{"salt":null,"cipher":"none"}}');
      this.stage = 'bound';
      this._bind();
      this._answer(env);
    }
  }

  _bind() {
    this.stage = 'bound';
    this.bound = true;
    this.server.opts.onBind?.(this);
  }

  _answer(env) {
    if (this.server.opts.onRequest) {
      this.server.opts.onRequest(this, env);
      return;
    }
    defaultAnswer(this, env);
  }
}

/** Answers `ping` with `pong`; nothing else. */
export function defaultAnswer(conn, env) {
  if (env.extra_data?.proto === 'ping') {
    conn.send({ proto: 'pong', data: { timestamp: env.extra_data.timestamp ?? null, server_time: Date.now() / 1000 } });
  }
}

/** Hex of bytes. */
export const hex = (b) => Buffer.from(b).toString('hex');
/** UTF-8 bytes. */
export const utf8 = (s) => te.encode(s);

/**
 * Waits until `pred()` is true, polling; fails after `ms`.
 * @param {() => boolean} pred
 * @param {number} [ms]
 * @param {string} [what]
 */
export async function until(pred, ms = 3000, what = 'condition') {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits for one event of an emitter. */
export function nextEvent(emitter, name, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${name}`)), ms);
    const off = emitter.on(name, (...args) => {
      clearTimeout(timer);
      off();
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
