// GameSession against a fake server that runs one game: frame delivery, dedupe and reload across drops, final
// errors, backoff and give-up, token refresh, keepalive, and a spectator watching again after a drop.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { GameSession } from '../src/game.js';
import { FakeSyncServer, nextEvent, sleep, until } from './helpers/fake-server.js';

const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const SESSION = {
  uid: '1001',
  token: 'tok-1',
  refresh_token: 'refresh-1',
  expires_in: 3600,
  sync_addr: '127.0.0.1:2025',
  session_key: KEY,
};
const START =
  '{"room_id":"r1","start_time":1700000000.5,"frame_interval_ms":50,"members":["1001","1002"],"seed":3543144545}';

/** A fake sync server running one room with one game; frames are kept as JSON text, like the real history. */
class GameServer {
  /** @param {{reloadChunk?: number, tickOnBind?: boolean, auth?: (env: any) => any}} [opts] */
  constructor(opts = {}) {
    this.opts = opts;
    /** @type {string[]} every frame's `data`, as sent */
    this.frames = [];
    /** Frames older than this are out of the history. */
    this.oldest = 0;
    this.running = false;
    /** Whether the seat is still there for a returning player. */
    this.seatKept = true;
    /** @type {any[]} */
    this.pending = [];
    /** @type {any} the connection frames go to */
    this.current = null;
    /** @type {number[]} start_frame of every reload request */
    this.reloads = [];
    /** @type {Set<any>} connections that spectate (no seat: they get frames only after room_spectate) */
    this.watchers = new Set();
    /** False once the room is gone (its game ended): room_spectate gets room_not_found. */
    this.roomExists = true;
    /** @type {string[]} the room_id of every room_spectate, in order */
    this.spectates = [];
    this.server = new FakeSyncServer({
      auth: (env) => this.opts.auth?.(env) ?? null,
      onBind: (c) => this._bind(c),
      onRequest: (c, env) => this._request(c, env),
    });
  }

  get network() {
    return this.server.network;
  }

  _bind(c) {
    this.current = c;
    if (this.running && this.seatKept) {
      c.send(`{"proto":"room_state","data":{"room_id":"r1","capacity":4,"min_players":2,"status":"playing","members":[]}}`);
      c.send(`{"proto":"game_start","data":${START}}`);
      if (this.opts.tickOnBind) this.tick();
    }
  }

  _request(c, env) {
    const x = env.extra_data;
    switch (x.proto) {
      case 'ping':
        c.send({ proto: 'pong', data: { timestamp: x.timestamp ?? null, server_time: Date.now() / 1000 } });
        break;
      case 'room_enter':
        c.send('{"proto":"room_state","data":{"room_id":"r1","capacity":4,"min_players":2,"status":"waiting","members":[]}}');
        break;
      case 'room_prepare':
        this.running = true;
        c.send('{"proto":"room_state","data":{"room_id":"r1","capacity":4,"min_players":2,"status":"playing","members":[]}}');
        c.send(`{"proto":"game_start","data":${START}}`);
        break;
      case 'sync_action':
        this.pending.push({ uid: env.uid, extra_data: { timestamp: x.timestamp, action_data: x.action_data } });
        break;
      case 'sync_request_reload_frames':
        this._reload(c, x.data.start_frame);
        break;
      case 'room_spectate':
        this._spectate(c, x.data.room_id);
        break;
      default:
        break;
    }
  }

  _reload(c, start) {
    this.reloads.push(start);
    const err = (code) =>
      c.send({ proto: 'error', data: { code, message: code, proto: 'sync_request_reload_frames' } });
    if (!this.running || !(this.seatKept || this.watchers.has(c))) return err('not_in_room');
    const end = this.frames.length;
    if (start > end) return err('bad_frame_range');
    if (start < this.oldest) return err('history_expired');
    const size = this.opts.reloadChunk ?? 3;
    if (start === end) {
      c.send(`{"proto":"reload_frames","data":{"start_frame":${start},"end_frame":${end},"last":true,"frames":[]}}`);
      return;
    }
    for (let s = start; s < end; s += size) {
      const e = Math.min(end, s + size);
      const frames = this.frames.slice(s, e).join(',');
      c.send(`{"proto":"reload_frames","data":{"start_frame":${s},"end_frame":${end},"last":${e === end},"frames":[${frames}]}}`);
    }
  }

  /** Like the real server: room_state, then in a running game the same game_start and the whole history. */
  _spectate(c, roomId) {
    this.spectates.push(roomId);
    const err = (code) => c.send({ proto: 'error', data: { code, message: code, proto: 'room_spectate' } });
    if (this.watchers.has(c)) return err('already_in_room');
    if (!this.roomExists || roomId !== 'r1') return err('room_not_found');
    this.watchers.add(c);
    c.send('{"proto":"room_state","data":{"room_id":"r1","capacity":4,"min_players":2,"status":"playing","members":[],"spectators":1}}');
    if (!this.running) return;
    c.send(`{"proto":"game_start","data":${START}}`);
    this._reload(c, this.oldest);
    this.reloads.pop(); // not asked for by the client
  }

  /** Builds the next frame; sends it unless `lost`. */
  tick(n = 1, lost = false) {
    for (let i = 0; i < n; i++) {
      const data = JSON.stringify({ frame_count: this.frames.length, actions: this.pending });
      this.pending = [];
      this.frames.push(data);
      const c = this.current;
      if (!lost && c?.stage === 'bound' && (this.seatKept || this.watchers.has(c))) {
        c.send(`{"proto":"sync_frame","data":${data}}`);
      }
    }
  }
}

/**
 * A GameSession on `gs` that records its events.
 * @param {GameServer} gs
 * @param {object} [extra]
 */
async function play(gs, extra = {}) {
  const game = new GameSession({
    session: SESSION,
    url: gs.server.url,
    WebSocket: gs.server.WebSocket,
    handshakeTimeoutMs: 1000,
    ...extra,
  });
  /** @type {any[]} */
  const log = [];
  /** @type {any[]} */
  const frames = [];
  game.on('frame', (f) => {
    frames.push(f);
    log.push(`frame ${f.frame_count}`);
  });
  const names = ['game_start', 'room_state', 'room_left', 'game_over', 'error', 'reconnecting', 'reconnected', 'close', 'session'];
  for (const name of names) {
    game.on(name, (data) => log.push([name, data]));
  }
  await game.open();
  return { game, log, frames, count: () => frames.length, names: () => log.filter(Array.isArray).map((e) => e[0]) };
}

/** Starts the game on a connected session and waits for its game_start. */
async function startGame(game) {
  const started = nextEvent(game, 'game_start');
  game.enterRoom('r1');
  game.prepare();
  return started;
}

/** @param {any[]} frames */
function assertExactlyOnceInOrder(frames, n) {
  assert.deepEqual(
    frames.map((f) => f.frame_count),
    Array.from({ length: n }, (_, i) => i),
  );
}

describe('GameSession', () => {
  test('delivers frames in order; actions round-trip', async () => {
    const gs = new GameServer();
    const { game, frames } = await play(gs);
    const start = await startGame(game);
    assert.equal(start.seed, 3543144545);
    assert.deepEqual(game.game, start);
    game.sendAction({ move: [1, 0] }, 1700000000.6);
    await until(() => gs.pending.length === 1);
    gs.tick(5);
    await until(() => frames.length === 5);
    assertExactlyOnceInOrder(frames, 5);
    assert.deepEqual(frames[0].actions, [{ uid: '1001', extra_data: { timestamp: 1700000000.6, action_data: { move: [1, 0] } } }]);
    assert.equal(game.nextFrame, 5);
    await game.close();
  });

  test('after a drop: reconnects, swallows the repeated game_start, reloads, delivers every frame once', async () => {
    const gs = new GameServer({ tickOnBind: true, reloadChunk: 2 });
    const { game, frames, log, names } = await play(gs);
    await startGame(game);
    gs.tick(5);
    await until(() => frames.length === 5);
    const first = gs.current;
    first.drop();
    gs.current = null;
    gs.tick(4); // frames 5..8 go out while the player is away
    assert.equal(await nextEvent(game, 'reconnecting').then((e) => e.attempt), 1);
    assert.equal(game.isReconnecting, true);
    assert.throws(() => game.sendAction({ lost: true }), { code: 'closed' });
    const reconnected = await nextEvent(game, 'reconnected');
    assert.deepEqual(reconnected, { attempts: 1, reloadFrom: 5 });
    // On rejoin the server sent frame 9 live before the reload request arrived; the reload covers 5..9 again.
    await until(() => frames.length === 10, 2000, 'frames 0..9');
    gs.tick(3);
    await until(() => frames.length === 13, 2000, 'frames 10..12');
    await sleep(30);
    assertExactlyOnceInOrder(frames, 13);
    assert.deepEqual(gs.reloads, [5]);
    assert.equal(names().filter((n) => n === 'game_start').length, 1, 'game_start shown once');
    assert.ok(names().indexOf('reconnecting') < names().indexOf('reconnected'));
    // Byte identity: each delivered frame is the one the server built.
    assert.deepEqual(frames.map((f) => JSON.stringify(f)), gs.frames.slice(0, 13));
    assert.equal(gs.network.connections.length, 2);
    assert.notEqual(gs.server.conns[1].salt.toString('hex'), gs.server.conns[0].salt.toString('hex'));
    void log;
    await game.close();
  });

  test('a gap on a live connection is filled by a reload from the next frame', async () => {
    const gs = new GameServer();
    const { game, frames } = await play(gs);
    await startGame(game);
    gs.tick(2);
    gs.tick(3, true); // frames 2, 3, 4 lost
    gs.tick(2); // 5 and 6 arrive: gap
    await until(() => frames.length === 7, 2000, 'frames 0..6');
    await sleep(30);
    assertExactlyOnceInOrder(frames, 7);
    assert.deepEqual(gs.reloads, [2], 'one reload, from the first missing frame');
    await game.close();
  });

  test('history_expired: the gap is reported and the session goes on from the frames it has', async () => {
    const gs = new GameServer();
    const { game, frames, log } = await play(gs);
    await startGame(game);
    gs.tick(2);
    gs.tick(4, true); // 2..5 lost
    gs.oldest = 4; // and 2..3 are out of the history
    gs.tick(1); // frame 6 arrives
    await until(() => frames.length === 3, 2000, 'frame 6 after the skip');
    assert.deepEqual(
      frames.map((f) => f.frame_count),
      [0, 1, 6],
    );
    const err = log.find((e) => Array.isArray(e) && e[0] === 'error')[1];
    assert.equal(err.code, 'history_expired');
    assert.match(err.message, /frames 2\.\.6 are missing/);
    gs.tick(1);
    await until(() => frames.length === 4);
    assert.equal(frames[3].frame_count, 7);
    await game.close();
  });

  test('reconnecting after the grace period: not_in_room ends the game, the session stays', async () => {
    const gs = new GameServer();
    const { game, frames, log } = await play(gs);
    await startGame(game);
    gs.tick(3);
    await until(() => frames.length === 3);
    gs.current.drop();
    gs.current = null;
    gs.seatKept = false;
    await nextEvent(game, 'reconnected');
    await until(() => log.some((e) => Array.isArray(e) && e[0] === 'error'));
    assert.equal(log.find((e) => e[0] === 'error')[1].code, 'not_in_room');
    assert.equal(game.game, null);
    game.ping(); // still connected
    await game.close();
  });

  for (const code of ['replaced', 'session_revoked', 'banned', 'shutting_down', 'token_expired']) {
    test(`a final error (${code}) ends the session without reconnecting`, async () => {
      const gs = new GameServer();
      const { game, names } = await play(gs);
      await startGame(game);
      gs.current.sendErrorAndClose(code, `bye: ${code}`);
      const info = await nextEvent(game, 'close');
      assert.equal(info.error.code, code);
      assert.equal(info.error.message, `bye: ${code}`);
      await sleep(250); // longer than the first backoff
      assert.equal(gs.network.attempts.length, 1, 'no reconnect attempt');
      assert.ok(!names().includes('reconnecting'));
      assert.throws(() => game.ping(), { code: 'closed' });
      assert.deepEqual(await game.closed, info);
    });
  }

  test('a non-final error then a drop still reconnects', async () => {
    const gs = new GameServer();
    const { game } = await play(gs);
    gs.current.send({ proto: 'error', data: { code: 'room_full', message: 'full', proto: 'room_enter' } });
    await nextEvent(game, 'error');
    gs.current.drop();
    await nextEvent(game, 'reconnected');
    await game.close();
  });

  test('the reconnecting event says in words why the connection closed', async () => {
    const gs = new GameServer();
    const { game } = await play(gs);
    gs.current.drop();
    const first = await nextEvent(game, 'reconnecting');
    assert.equal(first.error, 'connection closed: abnormal closure, no close frame (1006)');
    await nextEvent(game, 'reconnected');
    // The server's closing error, then its close frame without a status code (the browser reports 1005).
    gs.current.send({ proto: 'error', data: { code: 'timeout', message: 'idle for 60 s', proto: null } });
    await nextEvent(game, 'error');
    gs.current.socket.close(1005, '');
    const second = await nextEvent(game, 'reconnecting');
    assert.equal(second.error, "connection closed: no status (1005) after the server's error timeout: idle for 60 s");
    await nextEvent(game, 'reconnected');
    await game.close();
  });

  test('backoff doubles from 100 ms, then gives up', async () => {
    const gs = new GameServer();
    const { game } = await play(gs, { policy: { giveUpAfterMs: 700 } });
    /** @type {number[]} */
    const at = [];
    /** @type {number[]} */
    const attempts = [];
    game.on('reconnecting', (e) => {
      attempts.push(e.attempt);
      at.push(Date.now());
    });
    gs.network.down = true;
    const t0 = Date.now();
    gs.current.drop();
    const info = await nextEvent(game, 'close', 5000);
    assert.equal(info.error.code, 'network');
    // Attempts at ~100, ~300, ~700 ms: 1 right after the drop, 2 and 3 after failures; the third failure gives up.
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.ok(at[1] - t0 >= 90, `first retry after ${at[1] - t0} ms`);
    assert.ok(at[2] - at[1] >= 190, `second retry ${at[2] - at[1]} ms later`);
    assert.equal(gs.network.attempts.length, 4);
    assert.equal(game.isReconnecting, false);
  });

  test('reconnect disabled: a drop ends the session', async () => {
    const gs = new GameServer();
    const { game } = await play(gs, { policy: { enabled: false } });
    gs.current.drop();
    const info = await nextEvent(game, 'close');
    assert.equal(info.error, null);
    await sleep(200);
    assert.equal(gs.network.attempts.length, 1);
  });

  test('an expired token on reconnect is refreshed through the account client', async () => {
    const gs = new GameServer();
    const refreshed = { ...SESSION, token: 'tok-2', refresh_token: 'refresh-2' };
    /** @type {string[]} */
    const refreshCalls = [];
    const account = /** @type {any} */ ({
      refresh: async (/** @type {string} */ rt) => {
        refreshCalls.push(rt);
        return refreshed;
      },
    });
    const { game, names } = await play(gs, { account });
    gs.opts.auth = (env) => (env.token === 'tok-1' ? { code: 'token_expired', message: 'token expired' } : null);
    gs.current.drop();
    await nextEvent(game, 'reconnected');
    assert.deepEqual(refreshCalls, ['refresh-1']);
    assert.equal(game.session, refreshed);
    assert.ok(names().includes('session'));
    assert.equal(gs.server.last.received[0].env.token, 'tok-2');
    await game.close();
  });

  test('pings while idle', async () => {
    const gs = new GameServer();
    const { game } = await play(gs, { keepaliveMs: 60 });
    const conn = gs.server.last;
    await sleep(250);
    const pings = conn.received.filter((r) => r.env.extra_data.proto === 'ping').length;
    assert.ok(pings >= 1 + 2, `${pings} pings`); // the connect ping, the sealed ping, then keepalives
    await game.close();
  });

  test('close() during a reconnect stops it', async () => {
    const gs = new GameServer();
    const { game } = await play(gs);
    gs.network.down = true;
    gs.current.drop();
    await nextEvent(game, 'reconnecting');
    const info = await game.close();
    assert.equal(info.error, null);
    const tries = gs.network.attempts.length;
    await sleep(300);
    assert.equal(gs.network.attempts.length, tries);
  });

  test('the first connect failing rejects (no retry)', async () => {
    const gs = new GameServer({ auth: () => ({ code: 'bad_token', message: 'bad token' }) });
    await assert.rejects(play(gs), { code: 'bad_token' });
    assert.equal(gs.network.attempts.length, 1);
  });

  test('the URL comes from the option or the session', () => {
    assert.throws(() => new GameSession({ session: SESSION }), TypeError);
    const g = new GameSession({ session: { ...SESSION, sync_ws_url: 'ws://h:2028/ws' } });
    assert.equal(g.url, 'ws://h:2028/ws');
  });
});

/** A fake server whose game r1 runs without this client (no seat) and has `n` frames already. */
function runningWithoutUs(n, opts = {}) {
  const gs = new GameServer(opts);
  gs.running = true;
  gs.seatKept = false;
  gs.tick(n);
  return gs;
}

/** Pings and waits for the pong: everything the session sent before has been handled by the server. */
async function roundTrip(game) {
  const pong = nextEvent(game, 'pong');
  game.ping();
  await pong;
}

describe('GameSession spectating', () => {
  test('after a drop it watches again: game_start once, every frame once and in order', async () => {
    const gs = runningWithoutUs(3, { reloadChunk: 2 });
    const { game, frames, names } = await play(gs);
    const started = nextEvent(game, 'game_start');
    game.spectate('r1');
    assert.equal(game.watching, 'r1');
    await started;
    await until(() => frames.length === 3, 2000, 'the history, frames 0..2');
    gs.tick(2);
    await until(() => frames.length === 5, 2000, 'live frames 3..4');
    gs.current.drop();
    gs.current = null;
    gs.tick(3); // frames 5..7 go out while the spectator is away
    assert.deepEqual(await nextEvent(game, 'reconnected'), { attempts: 1, reloadFrom: 5 });
    // The new history is 0..7: 0..4 are dropped as already delivered.
    await until(() => frames.length === 8, 2000, 'frames 5..7 from the history');
    gs.tick(2);
    await until(() => frames.length === 10, 2000, 'live frames 8..9');
    await roundTrip(game);
    assertExactlyOnceInOrder(frames, 10);
    assert.deepEqual(frames.map((f) => JSON.stringify(f)), gs.frames, 'byte for byte');
    assert.equal(names().filter((n) => n === 'game_start').length, 1, 'game_start shown once');
    assert.deepEqual(gs.spectates, ['r1', 'r1']);
    assert.deepEqual(gs.reloads, [], 'no reload request: the history comes with room_spectate');
    assert.equal(game.watching, 'r1');
    await game.close();
  });

  for (const how of ['game_over', 'room_left', 'leaveRoom']) {
    test(`watching ends with ${how}: a reconnect does not spectate again`, async () => {
      const gs = runningWithoutUs(2);
      const { game, frames } = await play(gs);
      game.spectate('r1');
      await until(() => frames.length === 2, 2000, 'the history');
      if (how === 'leaveRoom') {
        game.leaveRoom();
      } else {
        const event = nextEvent(game, how);
        if (how === 'game_over') gs.current.send('{"proto":"game_over","data":{"room_id":"r1","reason":"all_left"}}');
        else gs.current.send('{"proto":"room_left","data":{"room_id":"r1","reason":"room_closed"}}');
        await event;
      }
      assert.equal(game.watching, null);
      gs.current.drop();
      await nextEvent(game, 'reconnected');
      await roundTrip(game);
      assert.deepEqual(gs.spectates, ['r1']);
      await game.close();
    });
  }

  test('the game ended during the drop: room_not_found stops watching and forgets the game', async () => {
    const gs = runningWithoutUs(2);
    const { game, frames } = await play(gs);
    game.spectate('r1');
    await until(() => frames.length === 2, 2000, 'the history');
    gs.current.drop();
    gs.current = null;
    gs.roomExists = false;
    const error = nextEvent(game, 'error');
    await nextEvent(game, 'reconnected');
    const err = await error;
    assert.equal(err.code, 'room_not_found');
    assert.equal(err.proto, 'room_spectate');
    assert.equal(game.watching, null);
    assert.equal(game.game, null);
    assert.equal(game.nextFrame, 0);
    gs.current.drop();
    await nextEvent(game, 'reconnected');
    await roundTrip(game);
    assert.deepEqual(gs.spectates, ['r1', 'r1'], 'no third room_spectate');
    await game.close();
  });

  test('an already_in_room answer keeps the room watched before', async () => {
    const gs = runningWithoutUs(1);
    const { game, frames } = await play(gs);
    game.spectate('r1');
    await until(() => frames.length === 1, 2000, 'the history');
    const error = nextEvent(game, 'error');
    game.spectate('r2');
    assert.equal((await error).code, 'already_in_room');
    assert.equal(game.watching, 'r1');
    gs.current.drop();
    gs.current = null;
    await nextEvent(game, 'reconnected');
    await roundTrip(game);
    assert.deepEqual(gs.spectates, ['r1', 'r2', 'r1']);
    gs.tick(1);
    await until(() => frames.length === 2, 2000, 'live frame 1');
    assertExactlyOnceInOrder(frames, 2);
    await game.close();
  });
});
