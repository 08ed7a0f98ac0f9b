// The real account and sync servers for the browser test, on free ports with a throw-away config (like
// tests/common/mod.rs): the account server serves web/demo/ at /demo/ and clients/js/ at /js/, and the sync server
// registers with it over RPC.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';

export const START_TIMEOUT_MS = 30_000;

/** @type {import('node:child_process').ChildProcess[]} */
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {string} url
 * @param {object} body
 */
export async function post(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/**
 * Starts both services and waits until logins name the sync server. Push-ordered: stop `children` in reverse.
 * @param {object} opts
 * @param {(name: string) => string} opts.bin the path of a binary
 * @param {string} opts.dir the temp dir: config, keys, database, logs
 * @param {string} opts.root the repository
 * @param {number} opts.maxGameSecs `sync.max_game_secs`
 * @param {import('node:child_process').ChildProcess[]} opts.children gets each service as it starts
 * @returns {Promise<{accountUrl: string, wsUrl: string}>}
 */
export async function startServices({ bin, dir, root, maxGameSecs, children: started }) {
  const config = path.join(dir, 'movan.toml');
  writeConfig(config, dir, root, '127.0.0.1:0', '127.0.0.1:0', maxGameSecs);
  const keygen = spawnSync(bin('account-server'), ['keygen', '--config', config], {
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 2],
  });
  assert.equal(keygen.status, 0, `account-server keygen failed (${keygen.error ?? keygen.status})`);

  const account = await startService(
    bin('account-server'),
    config,
    ['account-server listening on ', 'account-server rpc listening on '],
    path.join(dir, 'account.log'),
  );
  started.push(account.child);
  const [accountUrl, accountRpc] = account.addrs;
  writeConfig(config, dir, root, accountUrl.replace(/^https?:\/\//, ''), accountRpc, maxGameSecs);
  const sync = await startService(
    bin('sync-server'),
    config,
    ['sync-server websocket listening on ', 'sync-server listening on '],
    path.join(dir, 'sync.log'),
  );
  started.push(sync.child);
  const [wsUrl] = sync.addrs;

  // Wait until logins name this sync server (it registers over RPC).
  await post(`${accountUrl}/v1/register`, { username: 'node-probe', password: 'node-probe-password' });
  for (const deadline = Date.now() + START_TIMEOUT_MS; ; ) {
    const login = await post(`${accountUrl}/v1/login`, { username: 'node-probe', password: 'node-probe-password' });
    if (login.status === 200 && login.body?.sync_ws_url === wsUrl) break;
    assert.ok(Date.now() < deadline, `logins never named the sync server: last ${JSON.stringify(login)}`);
    await sleep(50);
  }
  return { accountUrl, wsUrl };
}

/**
 * SIGTERM, then up to 10 s for a clean exit (SIGKILL after that).
 * @param {import('node:child_process').ChildProcess} child
 */
export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const status = await exited;
  clearTimeout(timer);
  return status;
}

// ---- helpers ----

/** A TOML basic string (JSON's escapes are valid TOML). @param {string} s */
const tomlString = (s) => JSON.stringify(s);

/**
 * @param {string} config the file
 * @param {string} d the temp dir
 * @param {string} root
 * @param {string} http `account.http_addr`
 * @param {string} rpc `account.rpc_addr`, and the sync server's `account_rpc_addr`
 * @param {number} maxGameSecs
 */
function writeConfig(config, d, root, http, rpc, maxGameSecs) {
  writeFileSync(
    config,
    `[token]
private_key_path = ${tomlString(`${d}/jwt.pem`)}
public_key_path = ${tomlString(`${d}/jwt.pub.pem`)}

[account]
http_addr = ${tomlString(http)}
rpc_addr = ${tomlString(rpc)}
db_path = ${tomlString(`${d}/accounts.sled`)}
demo_dir = ${tomlString(path.join(root, 'web', 'demo'))}
js_dir = ${tomlString(path.join(root, 'clients', 'js'))}

[rpc]
secret_path = ${tomlString(`${d}/rpc_secret`)}
heartbeat_interval_ms = 200

[sync]
listen_addr = "127.0.0.1:0"
ws_addr = "127.0.0.1:0"
udp_addr = ""
metrics_addr = ""
node_id = "sync-browser-test"
account_rpc_addr = ${tomlString(rpc)}
max_players = 2
min_players = 2
max_game_secs = ${maxGameSecs}
checksum_interval = 20
`,
  );
}

/**
 * Starts a service and waits for one stdout line per prefix, in order; returns what follows each prefix.
 * @param {string} bin
 * @param {string} config
 * @param {string[]} prefixes
 * @param {string} logFile its stderr
 */
async function startService(bin, config, prefixes, logFile) {
  const log = openSync(logFile, 'a');
  const child = spawn(bin, ['--config', config], {
    env: { ...process.env, RUST_LOG: process.env.MOVAN_TEST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', log],
  });
  closeSync(log);
  children.push(child);
  const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) });
  /** @type {string[]} */
  const found = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${path.basename(bin)} did not start within ${START_TIMEOUT_MS} ms (log: ${logFile})`));
    }, START_TIMEOUT_MS);
    const onExit = (/** @type {any} */ code, /** @type {any} */ signal) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(bin)} exited (${code ?? signal}) before it was listening (log: ${logFile})`));
    };
    child.once('exit', onExit);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // Keeps draining stdout afterwards, so the service never blocks on a full pipe.
    lines.on('line', (line) => {
      if (found.length < prefixes.length && line.startsWith(prefixes[found.length])) {
        found.push(line.slice(prefixes[found.length].length).trim());
        if (found.length === prefixes.length) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(undefined);
        }
      }
    });
  });
  return { child, addrs: found };
}
