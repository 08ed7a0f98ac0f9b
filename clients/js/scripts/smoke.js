// End-to-end smoke test against running servers (not part of `npm test`, which needs no server):
//
//   node --experimental-websocket scripts/smoke.js [ACCOUNT_URL] [WS_URL]
//
// (Node 22+ has a global WebSocket and needs no flag.) Defaults: http://127.0.0.1:2026, and the login's
// `sync_ws_url` (else ws://127.0.0.1:2028/ws). Two players log in, meet in a fresh room, play 40 frames with
// actions; one player's socket is dropped at frame 10 and its GameSession reconnects and reloads. Both must see the
// same 40 frames, each once, in order. Exits 0 on success.

import { AccountClient, GameSession, SyncConnection } from '../movan.js';

const accountUrl = process.argv[2] ?? 'http://127.0.0.1:2026';
const wsOverride = process.argv[3];
const FRAMES = 40;
const DROP_AT = 10;

if (typeof globalThis.WebSocket !== 'function') {
  console.error('no global WebSocket: run with `node --experimental-websocket` (Node 20/21) or Node 22+');
  process.exit(2);
}

const fail = (/** @type {string} */ msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail('timed out after 60 s'), 60_000).unref();

const account = new AccountClient(accountUrl);
const tag = Math.random().toString(36).slice(2, 8);
const s1 = await account.registerOrLogin(`jsa_${tag}`, 'correct horse 1');
const s2 = await account.registerOrLogin(`jsb_${tag}`, 'correct horse 2');
const url = wsOverride ?? /** @type {any} */ (s1).sync_ws_url ?? 'ws://127.0.0.1:2028/ws';
console.log(`logged in ${s1.uid} and ${s2.uid}; sync over ${url}`);

// A bare SyncConnection: the sealed handshake and a ping.
{
  const conn = await SyncConnection.connect({ url, uid: s1.uid, token: s1.token, sessionKey: s1.session_key });
  const pong = new Promise((resolve) => conn.once('pong', resolve));
  conn.ping();
  const p = /** @type {any} */ (await pong);
  console.log(`SyncConnection: ${conn.encryption}, pong server_time ${p.server_time}`);
  await conn.close();
}

const room = `js-${tag}`;
/** @param {import('../src/account.js').Session} session */
async function player(session) {
  const game = await GameSession.connect({ session, url });
  /** @type {any[]} */
  const frames = [];
  const events = [];
  game.on('frame', (f) => frames.push(f));
  for (const e of ['game_start', 'reconnecting', 'reconnected', 'error', 'close', 'game_over']) {
    game.on(e, (d) => events.push([e, d]));
  }
  return { game, frames, events };
}

const a = await player(s1);
const b = await player(s2);
const started = Promise.all([a, b].map((p) => new Promise((resolve) => p.game.once('game_start', resolve))));
a.game.enterRoom(room);
b.game.enterRoom(room);
a.game.prepare();
b.game.prepare();
const [start] = /** @type {any[]} */ (await started);
console.log(`game started in ${start.room_id}, seed ${start.seed}`);

let dropped = false;
await new Promise((resolve, reject) => {
  const timer = setInterval(() => {
    try {
      if (!a.game.isReconnecting) a.game.sendAction({ from: 'a', n: a.frames.length });
      b.game.sendAction({ from: 'b', n: b.frames.length });
    } catch (e) {
      // A send while reconnecting fails; that input is lost, as on any dropped connection.
    }
    if (!dropped && a.frames.length >= DROP_AT) {
      dropped = true;
      console.log(`dropping a's socket at frame ${a.frames.length}`);
      /** @type {any} */ (a.game.connection)._ws.close();
    }
    if (a.frames.length >= FRAMES && b.frames.length >= FRAMES) {
      clearInterval(timer);
      resolve(undefined);
    }
    if (a.game.closeInfo || b.game.closeInfo) {
      clearInterval(timer);
      reject(new Error(`a session ended: ${JSON.stringify([a.game.closeInfo, b.game.closeInfo])}`));
    }
  }, 20);
}).catch((e) => fail(e.message));

for (const [name, p] of /** @type {const} */ ([['a', a], ['b', b]])) {
  const counts = p.frames.map((f) => f.frame_count);
  counts.forEach((n, i) => n !== i && fail(`${name}: frame #${i} is ${n}`));
}
const n = Math.min(a.frames.length, b.frames.length);
for (let i = 0; i < n; i++) {
  if (JSON.stringify(a.frames[i]) !== JSON.stringify(b.frames[i])) fail(`frame ${i} differs between the players`);
}
const names = a.events.map((e) => e[0]);
if (!names.includes('reconnecting') || !names.includes('reconnected')) fail(`a did not reconnect: ${names}`);
if (names.filter((x) => x === 'game_start').length !== 1) fail('a saw game_start more than once');
const actions = a.frames.reduce((sum, f) => sum + f.actions.length, 0);
console.log(`a events: ${names.join(', ')}`);
console.log(`OK: ${n} identical frames on both players, ${actions} actions, a reconnected once`);
a.game.leaveRoom();
b.game.leaveRoom();
await Promise.all([a.game.close(), b.game.close()]);
process.exit(0);
