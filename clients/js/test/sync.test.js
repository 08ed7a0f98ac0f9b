// SyncConnection against the in-process fake server (test/helpers/fake-server.js), whose crypto is node:crypto.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { MovanError } from '../src/errors.js';
import { SyncConnection } from '../src/sync.js';
import { FakeSyncServer, nodeSealBody, nextEvent, sleep, until } from './helpers/fake-server.js';

const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

/**
 * @param {FakeSyncServer} server
 * @param {object} [extra]
 */
function connect(server, extra = {}) {
  return SyncConnection.connect({
    url: server.url,
    uid: '1001',
    token: 'tok-1001',
    sessionKey: KEY,
    WebSocket: server.WebSocket,
    handshakeTimeoutMs: 2000,
    ...extra,
  });
}

describe('connection sequence', () => {
  test('sealed: plaintext token ping, handshake, sealed ping, both pongs consumed', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    assert.equal(conn.encryption, 'sealed');
    assert.equal(conn.isOpen, true);
    const c = server.last;
    assert.equal(server.network.attempts[0], 'ws://127.0.0.1:2028/ws');
    assert.equal(c.received.length, 2);
    // 1: plaintext, carries the token.
    assert.equal(c.received[0].sealed, false);
    assert.equal(c.received[0].env.uid, '1001');
    assert.equal(c.received[0].env.token, 'tok-1001');
    assert.equal(c.received[0].env.extra_data.proto, 'ping');
    assert.equal(typeof c.received[0].env.extra_data.timestamp, 'number');
    // 2: sealed (opened by node:crypto with counter 0), no token, body = plaintext + 16.
    assert.equal(c.received[1].sealed, true);
    assert.equal(c.received[1].env.token, undefined);
    assert.equal(c.received[1].env.extra_data.proto, 'ping');
    assert.equal(c.received[1].bodyLength, JSON.stringify(c.received[1].env).length + 16);
    assert.equal(c.bound, true);
    assert.equal(c.c2s, 1n);
    assert.equal(c.s2c, 2n); // two sealed pongs
    conn.close();
    await conn.closed;
  });

  test('sealed: requests are sealed with increasing counters, server messages become events', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const c = server.last;
    const events = [];
    for (const name of ['room_state', 'room_left', 'game_start', 'sync_frame', 'reload_frames', 'game_over', 'pong', 'error']) {
      conn.on(name, (data, msg) => events.push([name, data, msg.raw]));
    }
    const messages = [];
    conn.on('message', (m) => messages.push(m.proto));
    conn.enterRoom('lobby-7');
    conn.prepare();
    conn.sendAction({ move: [1, 0] }, 1700000000.12);
    conn.requestReload(3);
    conn.ping();
    conn.leaveRoom();
    conn.enterRoom();
    await until(() => c.received.length === 9, 2000, 'requests');
    const sent = c.received.slice(2).map((r) => r.env.extra_data);
    assert.deepEqual(
      sent.map((x) => x.proto),
      ['room_enter', 'room_prepare', 'sync_action', 'sync_request_reload_frames', 'ping', 'room_leave', 'room_enter'],
    );
    assert.ok(c.received.slice(2).every((r) => r.sealed && r.env.uid === '1001' && r.env.token === undefined));
    assert.deepEqual(sent[0].data, { room_id: 'lobby-7' });
    assert.deepEqual(sent[2].action_data, { move: [1, 0] });
    assert.equal(sent[2].timestamp, 1700000000.12);
    assert.deepEqual(sent[3].data, { start_frame: 3 });
    assert.equal(sent[6].data, undefined); // quick match
    assert.equal(c.c2s, 8n); // every message after the first is sealed

    const frame = '{"proto":"sync_frame","data":{"frame_count":0,"actions":[{"uid":"1001","extra_data":{"timestamp":1700000000.0,"action_data":{"move": [0, 1]}}}]}}';
    c.send('{"proto":"room_state","data":{"room_id":"lobby-7","capacity":4,"min_players":2,"status":"waiting","members":[]}}');
    c.send('{"proto":"game_start","data":{"room_id":"lobby-7","start_time":1700000000.0,"frame_interval_ms":50,"members":["1001"],"seed":3543144545}}');
    c.send(frame);
    c.send('{"proto":"reload_frames","data":{"start_frame":1,"end_frame":1,"last":true,"frames":[]}}');
    c.send('{"proto":"some_future_message","data":{}}');
    c.send({ proto: 'error', data: { code: 'not_in_room', message: 'not in a room', proto: 'room_leave' } });
    c.send({ proto: 'pong', data: { timestamp: null, server_time: 1 } });
    c.send({ proto: 'game_over', data: { room_id: 'lobby-7', reason: 'all_left', frame_count: 1, results: null } });
    c.send({ proto: 'room_left', data: { room_id: 'lobby-7' } });
    await until(() => events.length === 9, 2000, 'events');
    assert.equal(events.shift()?.[0], 'pong'); // the answer to conn.ping()
    assert.deepEqual(
      events.map((e) => e[0]),
      ['room_state', 'game_start', 'sync_frame', 'reload_frames', 'error', 'pong', 'game_over', 'room_left'],
    );
    assert.deepEqual(events[7][1], { room_id: 'lobby-7' });
    assert.equal(events[1][1].seed, 3543144545);
    assert.deepEqual(events[2][1].actions[0].extra_data.action_data, { move: [0, 1] });
    assert.equal(events[2][2], frame); // the raw JSON text, for hashing frames byte for byte
    assert.deepEqual(events[4][1], { code: 'not_in_room', message: 'not in a room', proto: 'room_leave' });
    assert.ok(messages.includes('some_future_message'));
    conn.close();
    const info = await conn.closed;
    assert.equal(info.error, null);
    assert.throws(() => conn.ping(), { code: 'closed' });
  });

  test('desync detection: sync_checksum goes out sealed, desync comes back as an event', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const c = server.last;
    conn.sendChecksum(60, '9f2c4e01a7b3d855');
    await until(() => c.received.length === 3, 2000, 'checksum');
    assert.deepEqual(c.received[2].env.extra_data.data, { frame: 60, hash: '9f2c4e01a7b3d855' });
    assert.equal(c.received[2].env.extra_data.proto, 'sync_checksum');
    assert.throws(() => conn.sendChecksum(60, ''), TypeError);
    assert.throws(() => conn.sendChecksum(60, 'h'.repeat(65)), TypeError);
    assert.throws(() => conn.sendChecksum(-1, 'a'), TypeError);
    conn.spectate('arena');
    await until(() => c.received.length === 4, 2000, 'spectate');
    assert.deepEqual(c.received[3].env.extra_data, { ...c.received[3].env.extra_data, proto: 'room_spectate', data: { room_id: 'arena' } });
    assert.throws(() => conn.spectate(''), TypeError);
    const got = [];
    conn.on('desync', (d) => got.push(d));
    c.send('{"proto":"desync","data":{"frame":60,"groups":[{"hash":"9f2c4e01a7b3d855","uids":["1001","1002","1003"]},{"hash":"01d7aa5c3e9b2f64","uids":["1004"]}],"majority":"9f2c4e01a7b3d855"}}');
    await until(() => got.length === 1, 2000, 'desync');
    assert.equal(got[0].majority, '9f2c4e01a7b3d855');
    assert.deepEqual(got[0].groups[1].uids, ['1004']);
    conn.close();
    await conn.closed;
  });

  test('plaintext: cipher none, one pong, nothing sealed', async () => {
    const server = new FakeSyncServer({ encryption: 'none' });
    const conn = await connect(server, { sessionKey: null });
    assert.equal(conn.encryption, 'plaintext');
    const c = server.last;
    conn.enterRoom('r1');
    await until(() => c.received.length === 2);
    assert.ok(c.received.every((r) => !r.sealed));
    assert.equal(c.received[1].env.token, undefined);
    const pong = nextEvent(conn, 'pong');
    c.send({ proto: 'pong', data: { timestamp: 1, server_time: 2 } });
    assert.deepEqual(await pong, [{ timestamp: 1, server_time: 2 }, { proto: 'pong', data: { timestamp: 1, server_time: 2 }, raw: '{"proto":"pong","data":{"timestamp":1,"server_time":2}}' }]);
    conn.close();
  });

  test('plaintext handshake is accepted even with a session key', async () => {
    const server = new FakeSyncServer({ encryption: 'none' });
    const conn = await connect(server);
    assert.equal(conn.encryption, 'plaintext');
    conn.close();
  });

  test('messages sent while rejoining (before the pongs) are delivered after connect resolves, in order', async () => {
    const server = new FakeSyncServer({
      onBind(c) {
        c.send({ proto: 'room_state', data: { room_id: 'r', status: 'playing', members: [] } });
        c.send({ proto: 'game_start', data: { room_id: 'r', start_time: 5, frame_interval_ms: 50, members: ['1001'], seed: 1 } });
      },
    });
    const conn = await connect(server);
    const seen = [];
    conn.on('room_state', () => seen.push('room_state'));
    conn.on('game_start', () => seen.push('game_start'));
    conn.on('sync_frame', (f) => seen.push(`frame ${f.frame_count}`));
    server.last.send({ proto: 'sync_frame', data: { frame_count: 7, actions: [] } });
    await until(() => seen.length === 3);
    assert.deepEqual(seen, ['room_state', 'game_start', 'frame 7']);
    conn.close();
  });

  test('a refused first message rejects with the server code (plaintext error, then close)', async () => {
    for (const code of ['token_expired', 'bad_token', 'session_revoked', 'banned', 'uid_mismatch']) {
      const server = new FakeSyncServer({ auth: () => ({ code, message: `refused: ${code}` }) });
      await assert.rejects(connect(server), (e) => {
        assert.ok(e instanceof MovanError);
        assert.equal(e.code, code);
        assert.equal(e.message, `refused: ${code}`);
        return true;
      });
    }
  });

  test('encryption required but no session key: crypto error, connection closed', async () => {
    const server = new FakeSyncServer();
    await assert.rejects(connect(server, { sessionKey: null }), { code: 'crypto' });
    await until(() => server.last.stage === 'closed');
  });

  test('a bad session key fails at the handshake', async () => {
    const server = new FakeSyncServer();
    await assert.rejects(connect(server, { sessionKey: 'not base64!' }), { code: 'crypto' });
  });

  test('a session key the server does not share: the sealed ping fails, the server closes', async () => {
    const server = new FakeSyncServer();
    await assert.rejects(connect(server, { sessionKey: Buffer.alloc(32, 9).toString('base64') }), { code: 'closed' });
    assert.equal(server.last.openFailed, true);
    assert.equal(server.last.bound, false);
  });

  test('a malformed handshake or an unknown cipher is a crypto failure', async () => {
    for (const hs of [
      '{"proto":"handshake","data":{"salt":"AAAA","cipher":"chacha20poly1305"}}',
      '{"proto":"handshake","data":{"salt":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","cipher":"aes"}}',
      '{"proto":"pong","data":{"timestamp":null,"server_time":1}}',
      'not json',
    ]) {
      const server = new FakeSyncServer({ handshake: hs });
      const conn = connect(server, { handshakeTimeoutMs: 500 });
      await assert.rejects(conn, (e) => e instanceof MovanError && (e.code === 'crypto' || e.code === 'protocol'));
      await until(() => server.last.stage === 'closed', 1000, 'the client to close');
    }
  });

  test('the handshake times out', async () => {
    const server = new FakeSyncServer();
    server.network.onConnection = () => {}; // accepts, never answers
    const started = Date.now();
    await assert.rejects(connect(server, { handshakeTimeoutMs: 100 }), { code: 'timeout' });
    assert.ok(Date.now() - started < 1000);
  });

  test('an unreachable server rejects with network', async () => {
    const server = new FakeSyncServer();
    server.network.down = true;
    await assert.rejects(connect(server), {
      code: 'network',
      message: 'cannot connect to ws://127.0.0.1:2028/ws: abnormal closure, no close frame (1006)',
    });
  });

  test('no WebSocket implementation', async () => {
    const saved = globalThis.WebSocket;
    // @ts-ignore: Node 20 has no global WebSocket; make sure of it for this test.
    delete globalThis.WebSocket;
    try {
      await assert.rejects(SyncConnection.connect({ url: 'ws://x/ws', uid: '1', token: 't' }), { code: 'network' });
    } finally {
      if (saved) globalThis.WebSocket = saved;
    }
  });
});

describe('failures after connecting', () => {
  test('a tampered server frame closes the connection with a crypto error', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const c = server.last;
    const body = nodeSealBody(c.keyS2C, c.s2c, Buffer.from('{"proto":"pong","data":{}}'));
    body[3] ^= 1;
    c.sendRaw(body);
    const info = await conn.closed;
    assert.equal(info.error?.code, 'crypto');
    assert.equal(conn.isOpen, false);
    await until(() => c.stage === 'closed');
  });

  test('a replayed server frame closes the connection', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const c = server.last;
    const body = nodeSealBody(c.keyS2C, c.s2c, Buffer.from('{"proto":"pong","data":{}}'));
    c.s2c += 1n;
    const pongs = [];
    conn.on('pong', (p) => pongs.push(p));
    c.sendRaw(body);
    c.sendRaw(body);
    const info = await conn.closed;
    assert.equal(pongs.length, 1);
    assert.equal(info.error?.code, 'crypto');
  });

  test('reordered server frames close the connection', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const c = server.last;
    const a = nodeSealBody(c.keyS2C, c.s2c, Buffer.from('{"proto":"pong","data":{}}'));
    const b = nodeSealBody(c.keyS2C, c.s2c + 1n, Buffer.from('{"proto":"pong","data":{}}'));
    c.sendRaw(b);
    c.sendRaw(a);
    const info = await conn.closed;
    assert.equal(info.error?.code, 'crypto');
  });

  test('a plaintext message on a sealed connection closes it', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    server.last.sendRaw(new TextEncoder().encode('{"proto":"pong","data":{}}'));
    assert.equal((await conn.closed).error?.code, 'crypto');
  });

  test('a final error then close: close info carries it', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    const errors = [];
    conn.on('error', (e) => errors.push(e.code));
    server.last.sendErrorAndClose('replaced', 'another connection took over');
    const info = await nextEvent(conn, 'close');
    assert.deepEqual(errors, ['replaced']);
    assert.equal(info.lastError.code, 'replaced');
    assert.equal(info.error, null);
  });

  test('messages above the frame limit are refused before sending', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server, { maxFrameBytes: 300 });
    assert.throws(() => conn.sendAction({ blob: 'x'.repeat(300) }), { code: 'too_large' });
    conn.sendAction({ ok: true });
    await until(() => server.last.received.length === 3);
    conn.close();
  });

  test('a dropped connection emits close once; sends then fail', async () => {
    const server = new FakeSyncServer();
    const conn = await connect(server);
    let closes = 0;
    conn.on('close', () => closes++);
    server.last.drop();
    const info = await conn.closed;
    assert.equal(info.code, 1006);
    await sleep(20);
    assert.equal(closes, 1);
    assert.throws(() => conn.ping(), { code: 'closed' });
  });
});
