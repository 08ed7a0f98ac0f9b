using System.Collections.Generic;
using Movan.Client;
using UnityEngine;

namespace Movan.Client.Samples
{
    /// <summary>
    /// Joins a quick match, steps a tiny deterministic simulation once per frame and shows the frame counter. Put it
    /// on any GameObject, start the servers (<c>./server.sh</c>), press Play in two editors or builds: the players'
    /// dots move with the arrow keys, identically on every screen.
    /// </summary>
    public sealed class QuickMatchSample : MonoBehaviour
    {
        [SerializeField] private string accountUrl = "http://127.0.0.1:2026";
        [SerializeField] private string username = "unity-player";
        [SerializeField] private string password = "unity-player-pass";

        private readonly Simulation simulation = new Simulation();
        private AccountClient account;
        private GameSession session;
        private string status = "logging in...";
        private long lastInputFrame = -1;

        private async void Start()
        {
            account = new AccountClient(accountUrl);
            try
            {
                Session login = await account.RegisterOrLoginAsync(username, password);
                // ConnectAsync runs the blocking connection sequence off the main thread.
                session = await GameSession.ConnectAsync(login, new GameSessionOptions { Account = account });
            }
            catch (MovanException e)
            {
                status = "cannot connect: " + e.Code + " " + e.Message;
                return;
            }
            // Every handler runs inside session.Poll(), on the main thread.
            session.RoomStateChanged += s => status = "room " + s.RoomId + ": " + s.Members.Count + "/" + s.Capacity + " players";
            session.GameStarted += g =>
            {
                simulation.Start(g);
                status = "playing in " + g.RoomId;
            };
            session.FrameReceived += f => simulation.Step(f);
            session.GameEnded += o =>
            {
                simulation.Stop();
                status = "game over: " + o.Reason;
            };
            session.ErrorReceived += e => Debug.LogWarning("movan: " + e);
            session.Reconnecting += r => status = "reconnecting (attempt " + r.Attempt + ")...";
            session.Reconnected += r => status = "reconnected";
            session.Closed += e => status = e == null ? "closed" : "disconnected: " + e.Code;
            session.EnterRoom(null); // null = quick match
            session.Prepare();
        }

        private void Update()
        {
            if (session == null) return;
            session.Poll();
            // One input per simulation frame at most: the server counts messages per second.
            if (!simulation.Running || session.IsReconnecting || session.IsClosed) return;
            if (simulation.FrameCount == lastInputFrame) return;
            int dx = (Input.GetKey(KeyCode.RightArrow) ? 1 : 0) - (Input.GetKey(KeyCode.LeftArrow) ? 1 : 0);
            int dy = (Input.GetKey(KeyCode.UpArrow) ? 1 : 0) - (Input.GetKey(KeyCode.DownArrow) ? 1 : 0);
            if (dx == 0 && dy == 0) return;
            lastInputFrame = simulation.FrameCount;
            session.SendAction("{\"move\":[" + dx + "," + dy + "]}");
        }

        private void OnGUI()
        {
            GUI.Label(new Rect(10, 10, 600, 20), status);
            GUI.Label(new Rect(10, 30, 600, 20), "frame " + simulation.FrameCount + "   checksum " + simulation.Checksum.ToString("x8"));
            int y = 50;
            foreach (KeyValuePair<string, int[]> p in simulation.Positions)
            {
                GUI.Label(new Rect(10, y, 600, 20), p.Key + " at (" + p.Value[0] + ", " + p.Value[1] + ")");
                GUI.Label(new Rect(300 + p.Value[0] * 4, 300 - p.Value[1] * 4, 20, 20), "o");
                y += 20;
            }
        }

        private void OnDestroy()
        {
            if (session != null)
            {
                // A close alone keeps the seat for the reconnect grace; leave first to free it for the others.
                try
                {
                    session.LeaveRoom();
                }
                catch (MovanException)
                {
                    // Reconnecting or already closed: nothing to leave.
                }
                session.Dispose();
            }
            if (account != null) account.Dispose();
        }
    }

    /// <summary>
    /// The game: one dot per player on a 101×101 grid. Integer math only, state changed only by frames in order, RNG
    /// seeded from <c>game_start.seed</c>: every client computes the same positions and checksum.
    /// </summary>
    public sealed class Simulation
    {
        private readonly SortedDictionary<string, int[]> positions = new SortedDictionary<string, int[]>(System.StringComparer.Ordinal);
        private uint rng;

        public bool Running { get; private set; }
        /// <summary>Frames stepped in this game (the next frame's number).</summary>
        public long FrameCount { get; private set; }
        /// <summary>A hash of the state, equal on every client at the same frame.</summary>
        public uint Checksum { get; private set; }
        public IEnumerable<KeyValuePair<string, int[]>> Positions { get { return positions; } }

        public void Start(GameStart start)
        {
            positions.Clear();
            rng = start.Seed == 0 ? 1u : start.Seed;
            foreach (string uid in start.Members) positions[uid] = new[] { Next() % 101 - 50, Next() % 101 - 50 };
            FrameCount = 0;
            Checksum = 0;
            Running = true;
        }

        public void Stop()
        {
            Running = false;
        }

        public void Step(Frame frame)
        {
            foreach (FrameAction a in frame.Actions)
            {
                int[] p;
                JsonValue move = a.ActionData["move"];
                if (!positions.TryGetValue(a.Uid, out p) || move == null || move.Count != 2) continue;
                p[0] = Clamp(p[0] + Clamp((int)move[0].AsInt64(), -1, 1), -50, 50);
                p[1] = Clamp(p[1] + Clamp((int)move[1].AsInt64(), -1, 1), -50, 50);
            }
            FrameCount = frame.FrameCount + 1;
            uint h = 2166136261;
            foreach (KeyValuePair<string, int[]> p in positions)
            {
                h = (h ^ (uint)p.Value[0]) * 16777619;
                h = (h ^ (uint)p.Value[1]) * 16777619;
            }
            Checksum = h ^ (uint)FrameCount;
        }

        private int Next()
        {
            // xorshift32
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            return (int)(rng & 0x7fffffff);
        }

        private static int Clamp(int v, int lo, int hi)
        {
            return v < lo ? lo : v > hi ? hi : v;
        }
    }
}
