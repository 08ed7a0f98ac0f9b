// End-to-end test of the web demo (web/demo/) in headless Chromium.
//
// Starts the real account and sync servers on free ports with a throw-away config (services.js), the account server
// serving web/demo/ at /demo/ and clients/js/ at /js/; opens two pages, logs two players in,
// quick-matches, gets ready, lets a third page spectate, holds arrow/WASD keys in both pages, and checks that all
// boards went through the same states frame by frame and that the squares moved. Then it drops one page's WebSocket
// (the "reconnecting…" banner shows, the other page sees the player offline), lets it reconnect and checks that it
// caught up on the same board. Then page a's autopilot (a test hook: one step toward the nearest coin per echoed move)
// collects coins until it wins (`?coins=4` on every page): all three pages must show the same winner, scores and
// coins, stop sending, and the players leave, which ends the game on the server (the spectator's `game_over` says
// `all_left`, and the match history has it). Then page a watches the match's replay (Watch replay, 1x, then instant):
// it plays to the end with the same winner, scores and state as the live pages, and every checksum the players
// reported matches. Saves a screenshot to docs/demo.png and more to the temp dir. `game.test.js` tests the
// simulation itself in Node, `replay.test.js` the playback.
//
//   npm test                                  # builds the binaries with cargo first (no-op when up to date)
//   MOVAN_BIN_DIR=target/release npm test
//
// Environment:
//   MOVAN_BIN_DIR    use these binaries, do not build
//   MOVAN_TEST_LOG   RUST_LOG of the services (default warn); their stderr goes to the temp dir
//   MOVAN_KEEP_TMP   1: keep everything in the temp dir (default: only screenshots and logs are kept)
//   MOVAN_SCREENSHOT where to save the screenshot (default docs/demo.png; empty: only the temp dir)
//   CHROMIUM         the browser (default /usr/bin/chromium)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { post, sleep, startServices, stop } from './services.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** Without the background-networking flags Chromium keeps calling home, which floods a closed network. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Both pages must get at least this many frames (50 ms each by default). */
const MIN_FRAMES = 60;
/** Frames both pages must have in common in their (frame, stateHash) histories. */
const MIN_COMMON_FRAMES = 40;
/** Coins to win (`?coins=N` on every page): the autopilot needs a few seconds per coin at most. */
const COINS_TO_WIN = 4;
/**
 * `sync.max_game_secs`: a safety net only. The game ends when the simulation has a winner and the players leave (about
 * 5 s of play, then the autopilot's coins); a game that reaches this fails the test with reason `max_duration`.
 */
const MAX_GAME_SECS = 120;

/** `GET /v1/matches/{id}/replay?format=jsonl`, the replay the page downloads. @param {string} url */
const isReplayUrl = (url) => /\/v1\/matches\/[^/?]+\/replay\?format=jsonl$/.test(url);

test('web demo: two browsers play the same lockstep game', { timeout: 15 * 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`SKIPPING browser test: ${CHROMIUM} is missing (apt-get install chromium)`);
    return;
  }
  /** @type {typeof import('playwright-core')} */
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    t.skip(`SKIPPING browser test: playwright-core is not installed (npm ci in tests/browser): ${e}`);
    return;
  }

  // ---- binaries ----
  let binDir = process.env.MOVAN_BIN_DIR;
  if (binDir) {
    binDir = path.resolve(ROOT, binDir);
  } else {
    const t0 = Date.now();
    const built = spawnSync('cargo', ['build', '--quiet', '-p', 'account-server', '-p', 'sync-server'], {
      cwd: ROOT,
      stdio: ['ignore', 2, 2],
    });
    assert.equal(built.status, 0, `cargo build of the service binaries failed (${built.error ?? built.status})`);
    t.diagnostic(`cargo build: ${Date.now() - t0} ms`);
    binDir = path.join(ROOT, 'target', 'debug');
  }
  const bin = (/** @type {string} */ name) => path.join(/** @type {string} */ (binDir), name);

  // ---- services ----
  const dir = mkdtempSync(path.join(tmpdir(), 'movan-browser-'));
  t.diagnostic(`temp dir: ${dir}`);
  let ok = false;
  /** @type {import('playwright-core').Browser|undefined} */
  let browser;
  /** @type {import('playwright-core').Page[]} */
  const pages = [];
  /** @type {string[]} */
  const pageErrors = [];
  let replayRetries = 0;
  /** @type {import('node:child_process').ChildProcess[]} */
  const services = [];
  const t0 = Date.now();
  try {
    const { accountUrl, wsUrl } = await startServices({
      bin,
      dir,
      root: ROOT,
      maxGameSecs: MAX_GAME_SECS,
      children: services,
    });
    t.diagnostic(`account ${accountUrl}, sync ${wsUrl}`);

    // The account server serves the page and the client.
    const demoRes = await fetch(`${accountUrl}/demo/`);
    assert.equal(demoRes.status, 200, 'GET /demo/ (account.demo_dir)');
    const jsRes = await fetch(`${accountUrl}/js/movan.js`);
    assert.equal(jsRes.status, 200, 'GET /js/movan.js (account.js_dir)');
    assert.match(jsRes.headers.get('content-type') ?? '', /^text\/javascript\b/, 'the MIME type of /js/movan.js');
    t.diagnostic(`/js/movan.js: ${jsRes.headers.get('content-type')}`);

    // ---- two players in two browser contexts ----
    browser = await playwright.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    /** A browser context whose pages have the test hook `__movanTest`. */
    const newContext = async () => {
      const context = await /** @type {import('playwright-core').Browser} */ (browser).newContext({
        viewport: { width: 800, height: 520 },
        deviceScaleFactor: 1,
      });
      // Test hook, not part of the page: lets the test drop the page's WebSockets and refuse new ones for a while.
      await context.addInitScript(() => {
        const Native = window.WebSocket;
        /** @type {WebSocket[]} */
        const sockets = [];
        const hook = { block: false, drop: () => sockets.forEach((s) => s.close()) };
        Object.defineProperty(window, '__movanTest', { value: hook });
        window.WebSocket = class extends Native {
          /** @param {string|URL} url @param {string|string[]} [protocols] */
          constructor(url, protocols) {
            // Blocked: connect to the discard port instead, which refuses the connection.
            super(hook.block ? String(url).replace(/\/\/[^/]+/, '//127.0.0.1:9') : url, protocols);
            sockets.push(this);
          }
        };
      });
      return context;
    };
    for (const name of ['a', 'b']) {
      const page = await (await newContext()).newPage();
      page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
      page.on('response', (r) => {
        // A replay asked for right after the game is not there yet (404 replay_not_found): the page asks again.
        if (r.status() === 404 && isReplayUrl(r.url())) replayRetries += 1;
        else if (r.status() >= 400) pageErrors.push(`${name}: ${r.status()} for ${r.url()}`);
      });
      page.on('console', (m) => {
        // The blocked reconnect attempts (see __movanTest) are expected to fail, and so are those replay retries.
        if (m.type() !== 'error' || m.text().includes('127.0.0.1:9/') || isReplayUrl(m.location().url)) return;
        pageErrors.push(`${name} console: ${m.text()}`);
      });
      await page.goto(`${accountUrl}/demo/?coins=${COINS_TO_WIN}`);
      pages.push(page);
    }
    const [a, b] = pages;
    const state = (/** @type {import('playwright-core').Page} */ p) => p.evaluate(() => structuredClone(window.movanDemo));
    const waitFor = (/** @type {import('playwright-core').Page} */ p, /** @type {string} */ expr, timeout = 20_000) =>
      p.waitForFunction(expr, null, { timeout, polling: 50 }).catch(async (e) => {
        throw new Error(`waiting for ${expr}: ${e.message}\nstate: ${JSON.stringify(await state(p))}`);
      });

    const tag = Math.random().toString(36).slice(2, 7);
    const users = [`alice_${tag}`, `bob_${tag}`];
    await Promise.all(
      pages.map(async (p, i) => {
        await waitFor(p, `window.movanDemo?.status === 'logged_out'`);
        await p.fill('#username', users[i]);
        await p.fill('#password', `password-${users[i]}`);
        if (i === 0) await p.screenshot({ path: path.join(dir, 'login.png') });
        await p.click('#login');
        await waitFor(p, `window.movanDemo.status === 'lobby'`);
      }),
    );
    const [sa, sb] = [await state(a), await state(b)];
    assert.ok(sa.uid && sb.uid && sa.uid !== sb.uid, `two different uids: ${sa.uid}, ${sb.uid}`);
    assert.equal(await a.textContent('#you-name'), users[0]);

    // Quick match one after the other: the second joins the first's waiting room.
    await a.click('#quick-match');
    await waitFor(a, `window.movanDemo.status === 'waiting'`);
    await b.click('#quick-match');
    for (const p of pages) await waitFor(p, `window.movanDemo.members.length === 2`);
    assert.equal((await state(a)).room, (await state(b)).room, 'both players in the same room');

    for (const p of pages) await p.click('#ready');
    for (const p of pages) await waitFor(p, `window.movanDemo.status === 'playing' && window.movanDemo.players.length === 2`);

    // ---- a third page spectates the running game (room_spectate): the history, then the same frames ----
    const watcher = await (await newContext()).newPage();
    watcher.on('pageerror', (e) => pageErrors.push(`watcher: ${e.message}`));
    await watcher.goto(`${accountUrl}/demo/?coins=${COINS_TO_WIN}`);
    await waitFor(watcher, `window.movanDemo?.status === 'logged_out'`);
    await watcher.fill('#username', `carol_${tag}`);
    await watcher.fill('#password', `password-carol_${tag}`);
    await watcher.click('#login');
    await waitFor(watcher, `window.movanDemo.status === 'lobby'`);
    await watcher.fill('#spectate-room', /** @type {string} */ ((await state(a)).room));
    await watcher.click('#spectate');
    await waitFor(watcher, `window.movanDemo.spectating && window.movanDemo.status === 'playing' && window.movanDemo.frame >= 0`);
    assert.equal(await watcher.isEnabled('#ready'), false, 'a spectator has nothing to get ready for');
    await waitFor(a, `window.movanDemo.spectators === 1`);
    assert.match(await a.textContent('#room-count') ?? '', /1 watching/, 'the players see the spectator');

    // ---- play: hold keys in both pages at once ----
    /**
     * @param {import('playwright-core').Page} p
     * @param {[string, number][]} keys key and how long to hold it, ms
     */
    const hold = async (p, keys) => {
      for (const [key, ms] of keys) {
        await p.keyboard.down(key);
        await sleep(ms);
        await p.keyboard.up(key);
      }
    };
    await Promise.all([
      hold(a, [['ArrowRight', 350], ['ArrowDown', 250]]),
      hold(b, [['a', 300], ['w', 300]]), // WASD
    ]);
    // Let the last actions land in frames on both sides.
    const afterKeys = Math.max((await state(a)).frame, (await state(b)).frame);
    const target = Math.max(MIN_FRAMES, afterKeys + 10);
    for (const p of pages) await waitFor(p, `window.movanDemo.frame >= ${target}`);

    // ---- the same states at the same frames ----
    const [fa, fb] = [await state(a), await state(b)];
    const hb = new Map(fb.history);
    const common = fa.history.filter(([frame]) => hb.has(frame));
    assert.ok(common.length >= MIN_COMMON_FRAMES, `frames in both histories: ${common.length}`);
    for (const [frame, hash] of common) {
      assert.equal(hash, hb.get(frame), `state at frame ${frame}: page a ${hash}, page b ${hb.get(frame)}`);
    }
    // The spectator saw the same states (it sends no input and no checksums).
    {
      await waitFor(watcher, `window.movanDemo.frame >= ${target}`);
      const fw = await state(watcher);
      assert.deepEqual(fw.players, fa.players, 'the spectator watches the same players');
      assert.equal(fw.sent, 0, 'a spectator sends no input');
      const hw = new Map(fw.history);
      const seen = fa.history.filter(([frame]) => hw.has(frame));
      assert.ok(seen.length >= MIN_COMMON_FRAMES, `frames the spectator shares with page a: ${seen.length}`);
      for (const [frame, hash] of seen) assert.equal(hw.get(frame), hash, `spectator state at frame ${frame}`);
    }
    // Both pages reported their state's checksum every 20 frames; the server found them equal (no `desync`).
    for (const p of pages) assert.equal(await p.textContent('#sync'), 'in sync', 'the checksums agree');
    const last = common[common.length - 1];
    t.diagnostic(`start ${JSON.stringify(fa.start)}, now ${JSON.stringify(fa.positions)}, sent ${fa.sent}+${fb.sent}`);
    t.diagnostic(`pages at frames ${fa.frame} and ${fb.frame}; ${common.length} common frames; state at ${last[0]}: ${last[1]}`);

    // The squares moved, the way the keys said (right/down for a, left/up for b, clamped at the edges).
    for (const s of [fa, fb]) {
      assert.deepEqual(s.start, fa.start, 'the same start positions');
      const [ua, ub] = [sa.uid, sb.uid];
      assert.notDeepEqual(s.positions[ua], s.start[ua], `${ua} moved`);
      assert.notDeepEqual(s.positions[ub], s.start[ub], `${ub} moved`);
      assert.ok(s.positions[ua][0] >= s.start[ua][0] && s.positions[ua][1] >= s.start[ua][1], 'a went right/down');
      assert.ok(s.positions[ub][0] <= s.start[ub][0] && s.positions[ub][1] <= s.start[ub][1], 'b went left/up');
    }
    assert.ok(fa.sent > 0 && fb.sent > 0, `both pages sent actions (${fa.sent}, ${fb.sent})`);
    assert.ok(fa.rttMs !== null && fb.rttMs !== null, 'ping round trips measured');
    assert.match(await a.textContent('#frame') ?? '', /^\d+$/, 'the frame counter is shown');
    assert.equal(await a.isVisible('#reconnecting'), false, 'no reconnecting indicator');

    // ---- a dropped connection: "reconnecting…", then back in the same game with the frames it missed ----
    await b.evaluate(() => {
      /** @type {any} */ (window).__movanTest.block = true;
      /** @type {any} */ (window).__movanTest.drop();
    });
    await waitFor(b, `window.movanDemo.reconnecting && !document.getElementById('reconnecting').hidden`, 10_000);
    assert.match(await b.textContent('#reconnecting') ?? '', /Reconnecting…/);
    // The page closed its socket without a status code; the server's close frame echoes none: 1005, in words.
    assert.match(await b.textContent('#reconnecting') ?? '', /connection closed: no status \(1005\)/);
    assert.equal((await state(b)).dropReason, 'connection closed: no status (1005)');
    await waitFor(a, `window.movanDemo.members.some((m) => m.uid === '${sb.uid}' && !m.connected)`, 10_000);
    await b.screenshot({ path: path.join(dir, 'reconnecting-b.png') });
    await a.screenshot({ path: path.join(dir, 'reconnecting-a.png') });
    // Moves while b is away; b must still end up with the same board.
    await hold(a, [['ArrowLeft', 200]]);
    const dropFrame = (await state(a)).frame;
    await b.evaluate(() => {
      /** @type {any} */ (window).__movanTest.block = false;
    });
    await waitFor(b, `!window.movanDemo.reconnecting && document.getElementById('reconnecting').hidden`, 20_000);
    await waitFor(a, `window.movanDemo.members.every((m) => m.connected)`, 10_000);
    for (const p of pages) await waitFor(p, `window.movanDemo.frame >= ${dropFrame + 10}`);
    {
      const [ra, rb] = [await state(a), await state(b)];
      assert.equal(rb.reconnects, 1, 'b reconnected once');
      assert.equal(rb.status, 'playing');
      const hb2 = new Map(rb.history);
      const both = ra.history.filter(([frame]) => hb2.has(frame));
      assert.ok(both.some(([frame]) => frame >= dropFrame), 'common frames after the drop');
      for (const [frame, hash] of both) {
        assert.equal(hash, hb2.get(frame), `after the reconnect, state at frame ${frame}: a ${hash}, b ${hb2.get(frame)}`);
      }
      // b's history has every frame, none twice, across the drop.
      const frames = rb.history.map(([f]) => f);
      assert.deepEqual(frames, frames.map((_, i) => frames[0] + i), 'b applied every frame once, in order');
      t.diagnostic(`reconnect: dropped at about frame ${dropFrame}; now a ${ra.frame}, b ${rb.frame}; ${both.length} common`);
    }

    // ---- the spectator's connection drops: it watches again by itself, every frame once, the same states ----
    {
      const before = (await state(watcher)).frame;
      await watcher.evaluate(() => /** @type {any} */ (window).__movanTest.drop());
      await waitFor(watcher, `window.movanDemo.reconnects === 1 && !window.movanDemo.reconnecting`, 20_000);
      await waitFor(watcher, `window.movanDemo.frame >= ${before + 20}`);
      await waitFor(a, `window.movanDemo.spectators === 1`, 10_000);
      const [wa, ww] = [await state(a), await state(watcher)];
      assert.equal(ww.spectating, true, 'still watching');
      assert.equal(ww.status, 'playing');
      const frames = ww.history.map(([f]) => f);
      assert.deepEqual(frames, frames.map((_, i) => frames[0] + i), 'the spectator applied every frame once, in order');
      const hw = new Map(ww.history);
      const both = wa.history.filter(([frame]) => hw.has(frame));
      assert.ok(both.some(([frame]) => frame > before), 'common frames after the drop');
      for (const [frame, hash] of both) assert.equal(hw.get(frame), hash, `spectator state at frame ${frame}`);
      t.diagnostic(`spectator reconnect: dropped at frame ${before}, now ${ww.frame}; ${both.length} common with a`);
    }

    // ---- screenshot ----
    const shots = [path.join(dir, 'demo.png')];
    const wanted = process.env.MOVAN_SCREENSHOT ?? path.join(ROOT, 'docs', 'demo.png');
    if (wanted) shots.push(path.resolve(ROOT, wanted));
    const png = await a.screenshot({ fullPage: true });
    for (const file of shots) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, png);
    }
    t.diagnostic(`screenshot: ${shots.join(', ')}`);

    // ---- the end: page a's autopilot collects coins until it wins; every page agrees on the winner ----
    assert.equal((await state(a)).winner, null, 'nobody has won yet');
    await a.evaluate(() => {
      /** @type {any} */ (window).movanDemo.autopilot = true;
    });
    const everyone = [a, b, watcher];
    for (const p of everyone) await waitFor(p, `window.movanDemo.winner !== null`, 60_000);
    const ends = await Promise.all(everyone.map(state));
    const [ea] = ends;
    const endHash = new Map(ea.history).get(ea.endFrame);
    for (const [i, s] of ends.entries()) {
      assert.equal(s.winner, sa.uid, `page ${i}: the autopilot's player won`);
      assert.equal(s.endFrame, ea.endFrame, `page ${i}: the same last frame of the game`);
      assert.deepEqual(s.scores, ea.scores, `page ${i}: the same scores`);
      assert.deepEqual(s.coins, ea.coins, `page ${i}: the same coins`);
      assert.equal(new Map(s.history).get(ea.endFrame), endHash, `page ${i}: the same state at the end`);
    }
    assert.equal(ea.scores[sa.uid], COINS_TO_WIN);
    assert.ok(ea.scores[sb.uid] < COINS_TO_WIN);
    for (const p of everyone) assert.match(await p.textContent('#overlay-text') ?? '', new RegExp(`${sa.uid} wins`));
    t.diagnostic(`${ea.winner} wins at frame ${ea.endFrame}: ${JSON.stringify(ea.scores)}, state ${endHash}`);

    // ---- the players leave after a pause; the last one out ends the game on the server (all_left) ----
    for (const p of pages) await waitFor(p, `window.movanDemo.status === 'game_over' && window.movanDemo.left`);
    await waitFor(watcher, `window.movanDemo.status === 'game_over'`);
    {
      const [oa, ob, ow] = await Promise.all(everyone.map(state));
      assert.equal(ow.gameOver?.reason, 'all_left', 'the server ended the game when the players left');
      assert.ok(ow.gameOver.frame_count > ea.endFrame, 'the game ended after the simulation did');
      assert.equal(ow.winner, sa.uid);
      assert.equal(ow.spectating, false);
      assert.equal(oa.sent, ends[0].sent, 'page a sent nothing after the end');
      assert.equal(ob.sent, ends[1].sent, 'page b sent nothing after the end');
      for (const p of pages) {
        assert.match(await p.textContent('#overlay-text') ?? '', /wins\n.*\nYou left the room/);
        assert.equal(await p.isEnabled('#quick-match'), true, 'quick match again after the game');
      }
      assert.match(await watcher.textContent('#overlay-text') ?? '', /wins\n.*\nGame over: all left/);
      assert.equal(await a.textContent('#sync'), 'in sync', 'the checksums agreed to the end');
      await a.screenshot({ path: path.join(dir, 'game-over.png') });
      await watcher.screenshot({ path: path.join(dir, 'game-over-watcher.png') });
    }

    // ---- the game-over text never covers your square or its "you" label ----
    // Checked where the game ended, then with the squares moved (a test change, then a redraw): page a's square on
    // every row, the other square mirrored in the same column; and one layout where only the middle band is free.
    {
      const [ua, ub] = [/** @type {string} */ (sa.uid), /** @type {string} */ (sb.uid)];
      /** @type {([number, number, number, number]|null)[]} a's cell and b's cell, or null: as the game ended */
      const layouts = [null, ...[0, 1, 4, 8, 9, 10, 13, 16, 17].map((row) => [12, row, 13, 17 - row]), [12, 4, 12, 14]];
      for (const cells of layouts) {
        const layout = await a.evaluate(
          async ({ ua, ub, cells }) => {
            const d = /** @type {any} */ (window).movanDemo;
            if (cells) [d.positions[ua], d.positions[ub]] = [cells.slice(0, 2), cells.slice(2)];
            /** @type {any} */ (window).movanDemoRender();
            await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
            const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById('canvas')).getBoundingClientRect();
            const card = /** @type {HTMLElement} */ (document.getElementById('overlay-text')).getBoundingClientRect();
            return { boxes: d.boxes, canvas: canvas.toJSON(), card: card.toJSON(), at: [d.positions[ua], d.positions[ub]] };
          },
          { ua, ub, cells },
        );
        const scale = layout.canvas.width / (26 * 20);
        const covered = (/** @type {string} */ uid) => {
          const box = layout.boxes[uid];
          assert.ok(box, `the box of ${uid} is known (${JSON.stringify(layout)})`);
          const [left, top] = [layout.canvas.left + box.x * scale, layout.canvas.top + box.y * scale];
          const [right, bottom] = [left + box.w * scale, top + box.h * scale];
          const { card } = layout;
          return left < card.right && card.left < right && top < card.bottom && card.top < bottom;
        };
        const where = JSON.stringify({ at: layout.at, card: layout.card, boxes: layout.boxes, scale });
        assert.ok(!covered(ua), `the game-over text covers your square or label: ${where}`);
        if (JSON.stringify(cells) === JSON.stringify([12, 4, 12, 14])) {
          assert.ok(!covered(ub), `the middle band was free, yet the text covers the other square: ${where}`);
        }
      }
      assert.match(await a.textContent('#overlay-text') ?? '', new RegExp(`${sa.uid} wins`));
    }

    // ---- page a plays the game back from its replay: the same game, and every recorded checksum matched ----
    /** @type {any} */
    let replayed;
    {
      // The replay panel lists the finished game once the account server has it, and selects it: the latest.
      await waitFor(a, `window.movanDemo.matches[0]?.room_id === '${fa.room}'`, 20_000);
      await waitFor(a, `!document.getElementById('replay-watch').disabled`);
      assert.equal(await a.inputValue('#replay-match'), (await state(a)).matches[0].match_id, 'the latest is selected');
      // At the recorded tick rate first (1x), with its frame counter, then the rest at once.
      await a.click('#replay-watch');
      await waitFor(a, `window.movanDemo.replay?.status === 'playing' && window.movanDemo.replay.frame >= 10`);
      assert.equal((await state(a)).replay.done, false, 'at 1x, a game of seconds takes seconds');
      assert.match(await a.textContent('#replay-frame') ?? '', /^\d+ \/ \d+$/, 'the frame counter is shown');
      await a.selectOption('#replay-speed', 'instant');
      await waitFor(a, `window.movanDemo.replay.done`, 30_000);
      const [r, oa] = [(await state(a)).replay, await state(a)];
      replayed = r;
      assert.equal(r.status, 'done', `the replay played to its end: ${r.error}`);
      assert.equal(r.matchId, oa.matches[0].match_id);
      assert.equal(r.truncated, false);
      assert.equal(r.frames, (await state(watcher)).gameOver.frame_count, 'as many frames as the game had');
      assert.equal(r.frame, r.frames - 1, 'every frame applied');
      assert.deepEqual(r.players, fa.players, "the header's players, in game_start order");
      assert.equal(r.winner, ea.winner, 'the same winner as the live pages');
      assert.equal(r.endFrame, ea.endFrame, 'the game ended at the same frame');
      assert.deepEqual(r.scores, ea.scores, 'the same scores');
      assert.deepEqual(r.coins, ea.coins, 'the same coins');
      assert.equal(r.stateHash, endHash, 'the same state hash after the last frame as the live pages at the end');
      assert.equal(r.stateHash, oa.stateHash, "the same state hash as page a's last frame");
      assert.ok(r.checksumsTotal >= 1, `the players' checksums were recorded (${r.checksumsTotal})`);
      assert.equal(r.checksumsChecked, r.checksumsTotal, 'every recorded checksum was compared');
      assert.equal(r.checksumsMatched, r.checksumsTotal, `every checksum matched: ${JSON.stringify(r.mismatch)}`);
      assert.equal(r.mismatch, null);
      const n = r.checksumsTotal;
      assert.equal(await a.textContent('#replay-check'), `replay matches the players' checksums (${n}/${n})`);
      assert.match(await a.textContent('#overlay-text') ?? '', new RegExp(`^${ea.winner} wins\n.*\nReplay of `));
      await a.screenshot({ path: path.join(dir, 'replay.png'), fullPage: true });
      // Closed, the board shows the live page again.
      await a.click('#replay-close');
      await waitFor(a, `window.movanDemo.replay === null`);
      assert.match(await a.textContent('#overlay-text') ?? '', /wins\n.*\nYou left the room/);
      t.diagnostic(`replay of ${r.matchId}: ${r.frames} frames, ${n}/${n} checksums, ${replayRetries} 404 retries`);
    }

    // ---- the account server recorded the match, ended by all_left, and has its replay ----
    {
      const login = await post(`${accountUrl}/v1/login`, { username: users[0], password: `password-${users[0]}` });
      assert.equal(login.status, 200);
      /** @type {any} */
      let match;
      for (const deadline = Date.now() + 10_000; !match; ) {
        const res = await fetch(`${accountUrl}/v1/me/matches`, { headers: { authorization: `Bearer ${login.body.token}` } });
        match = (await res.json()).matches?.find((/** @type {any} */ m) => m.room_id === fa.room);
        if (!match) {
          assert.ok(Date.now() < deadline, 'the match report reached the account server');
          await sleep(100);
        }
      }
      assert.equal(match.end_reason, 'all_left');
      assert.deepEqual([...match.players].sort(), [sa.uid, sb.uid].sort());
      assert.equal(replayed.matchId, match.match_id, 'page a played back this match');
      const res = await fetch(`${accountUrl}/v1/matches/${encodeURIComponent(match.match_id)}/replay?format=jsonl`, {
        headers: { authorization: `Bearer ${login.body.token}` },
      });
      assert.equal(res.status, 200);
      const header = JSON.parse((await res.text()).split('\n')[0]);
      assert.equal(header.frame_count, replayed.frames);
      assert.equal(header.checksums.length, replayed.checksumsTotal, 'the page compared every recorded checksum');
      assert.equal(header.first_desync_frame, null);
    }

    assert.deepEqual(pageErrors, [], 'no page errors');
    ok = true;
  } finally {
    if (!ok && pages.length) {
      for (const [i, p] of pages.entries()) {
        await p.screenshot({ path: path.join(dir, `failure-${i}.png`), fullPage: true }).catch(() => {});
      }
      if (pageErrors.length) t.diagnostic(`page errors: ${pageErrors.join('; ')}`);
    }
    await browser?.close().catch(() => {});
    for (const child of services.reverse()) await stop(child);
    t.diagnostic(`services and browser: ${Date.now() - t0} ms`);
    if (ok && !process.env.MOVAN_KEEP_TMP) {
      // Keep the screenshot and the service logs; drop the keys, secret and database.
      for (const f of ['jwt.pem', 'jwt.pub.pem', 'rpc_secret', 'accounts.sled', 'movan.toml']) {
        rmSync(path.join(dir, f), { recursive: true, force: true });
      }
    }
    t.diagnostic(`kept ${dir} (screenshot, service logs${ok ? '' : ', config, failure screenshots'})`);
  }
});
