// The demo page's state, as the browser test reads it (`window.movanDemo`): the session, the room, and the game
// (positions, scores, coins, winner) as the simulation (game.js) has it after the last frame.

/**
 * What the demo page knows, kept up to date for tests (`window.movanDemo`), in its state at page load.
 * status: logged_out | logging_in | connecting | lobby | waiting | playing | ended (the simulation has a winner; the
 * players leave soon) | game_over (left, or the server's `game_over`) | closed
 * @param {import('./game.js').Rules} rules this page's rules
 */
export function newDemoState(rules) {
  return {
    status: 'logged_out',
    uid: /** @type {string|null} */ (null),
    username: /** @type {string|null} */ (null),
    /** True while the sync connection is down and the session is getting it back. */
    reconnecting: false,
    /** How many times the connection dropped and the session started to reconnect. */
    reconnects: 0,
    /** @type {string|null} */
    room: null,
    /** @type {{uid: string, ready: boolean, connected: boolean}[]} */
    members: [],
    /** @type {string[]} the players of the running game, in `game_start` order */
    players: [],
    /** The last frame applied (-1 before the first frame of a game). */
    frame: -1,
    /** @type {Record<string, [number, number]>} uid -> [x, y] after `frame` */
    positions: {},
    /** @type {Record<string, [number, number]>} uid -> [x, y] at game start */
    start: {},
    /** @type {Record<string, number>} uid -> coins collected, after `frame` */
    scores: {},
    /** @type {[number, number][]} the coins on the board after `frame` */
    coins: [],
    /** @type {string|null} the winner's uid, once the simulation ended */
    winner: null,
    /** @type {number|null} the frame that ended the simulation */
    endFrame: null,
    /** The rules (`?coins=N&frames=N`): coins to win, the game's length in frames. */
    rules,
    /** For tests: when true, your square heads for the nearest coin by itself, one step per echoed move. */
    autopilot: false,
    /** FNV-1a of the whole game state after `frame` (game.js `stateText`): what `sync_checksum` reports. */
    stateHash: '',
    /** @type {[number, string][]} (frame, stateHash) for the latest frames, oldest first */
    history: [],
    /** @type {number|null} the latest ping round trip, ms */
    rttMs: null,
    /** Actions this page sent in the current game. */
    sent: 0,
    /** True once this page left the room after its game ended. */
    left: false,
    /** True while this page watches a room (`room_spectate`) instead of playing. */
    spectating: false,
    /** Spectators of the current room, from `room_state`. */
    spectators: 0,
    /** @type {any} the last `game_over` */
    gameOver: null,
    /** @type {string|null} the last error shown */
    error: null,
    /** @type {string|null} why the connection dropped, in words, while reconnecting (e.g. "connection closed: ...") */
    dropReason: null,
    /** @type {Record<string, import('./board.js').Box>} each player's square and label on the board, in board pixels */
    boxes: {},
    /**
     * Your latest finished matches, newest first (`GET /v1/me/matches`), as the replay panel lists them.
     * @type {{match_id: string, room_id: string, players: string[], frame_count: number, end_reason: string,
     *   started_at: number}[]}
     */
    matches: [],
    /** @type {import('./replay.js').ReplayState|null} the replay open on the board (replay.js), or null */
    replay: null,
  };
}
