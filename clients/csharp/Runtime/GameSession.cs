using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Movan.Client
{
    /// <summary>
    /// A sync connection that survives network drops, like the Rust SDK's <c>GameClient</c>: reconnects with backoff,
    /// rebinds, reloads what it missed and hands out every frame of a game exactly once, in order. It pings while
    /// idle, drops dead connections, refreshes tokens, and never comes back after <c>replaced</c>,
    /// <c>session_revoked</c>, <c>banned</c> or <c>shutting_down</c>.
    /// </summary>
    /// <remarks>
    /// <para>Threads: the network work runs on two background threads per session (a reader and a driver that
    /// writes, reconnects and keeps time). Nothing of yours runs on them. Events wait in a queue until you take them
    /// on your thread: call <see cref="Poll"/> from Unity's <c>Update()</c>, which raises the C# events
    /// (<see cref="FrameReceived"/>, ...) there, or take them yourself with <see cref="TryNextEvent"/> /
    /// <see cref="NextEvent"/>. Sends (<see cref="SendAction(string, double?)"/>, ...) are safe from any thread and
    /// never block on the network: one is written at once when the socket has room and nothing waits before it,
    /// otherwise queued for the driver.</para>
    /// <para>The behaviour lives in <see cref="GameSessionCore"/>, a state machine without IO, tested with fake time.</para>
    /// </remarks>
    public sealed partial class GameSession : IDisposable
    {
        private static readonly Stopwatch Clock = Stopwatch.StartNew();

        private enum WorkKind { Send, Wake, Refreshed, Close }

        private sealed class Work
        {
            public WorkKind Kind;
            public byte[] Body;
            // Send: the connection it was written for. Close: the connection to close once the sends before it went out.
            public SyncConnection Conn;
            public Session Session;
            public MovanException Error;
        }

        private static readonly Work WakeWork = new Work { Kind = WorkKind.Wake };

        private readonly object gate = new object();
        // Orders the application's messages: direct writes never overtake queued ones.
        private readonly object writeLock = new object();
        private int queuedSends;
        private long lastDirectSend;
        private readonly GameSessionOptions options;
        private readonly GameSessionCore core;
        private readonly BoundedQueue<GameEvent> events;
        private readonly BoundedQueue<Work> inbox;
        private readonly Listener listener;
        private readonly string address;
        private readonly Thread driver;
        private Session session;
        private volatile SyncConnection current;
        private volatile bool linkUp;
        private bool stopDriver;
        private volatile bool ended;

        private GameSession(Session session, GameSessionOptions options)
        {
            this.session = session;
            this.options = options;
            address = options.SyncAddress ??
                (UdpTransport.IsUdp(options.Transport) ? SyncConnectOptions.UdpAddressOf(session) : session.SyncAddr);
            core = new GameSessionCore(options, options.Account != null);
            events = new BoundedQueue<GameEvent>(options.MaxQueuedEvents);
            inbox = new BoundedQueue<Work>(options.MaxQueuedSends);
            listener = new Listener(this);
            driver = new Thread(DriverLoop, 256 * 1024);
            driver.IsBackground = true;
            driver.Name = "movan-session-driver";
        }

        /// <summary>
        /// Connects with a login's (or refresh's) session and starts the session. The first connection must succeed:
        /// a failure throws, with no retry. Blocks for the connection sequence: from Unity's main thread use
        /// <see cref="ConnectAsync"/>.
        /// </summary>
        /// <exception cref="MovanException">As for <see cref="SyncConnection.Connect"/>.</exception>
        public static GameSession Connect(Session session, GameSessionOptions options = null)
        {
            if (session == null) throw new ArgumentNullException("session");
            var gs = new GameSession(session, options ?? new GameSessionOptions());
            SyncConnection conn = SyncConnection.Open(gs.ConnectOptions(session));
            long now = Now();
            gs.IsSealed = conn.IsSealed;
            lock (gs.gate)
            {
                gs.current = conn;
                gs.linkUp = true;
                gs.core.OnSessionIssued(RemainingSecs(session), now);
                gs.core.OnConnected(now);
            }
            gs.driver.Start();
            conn.Start(gs.listener);
            return gs;
        }

        /// <summary><see cref="Connect"/> on a thread-pool thread.</summary>
        public static Task<GameSession> ConnectAsync(Session session, GameSessionOptions options = null)
        {
            return Task.Run(() => Connect(session, options));
        }

        // ---- events ----

        /// <summary>The next frame of the running game (raised by <see cref="Poll"/>).</summary>
        public event Action<Frame> FrameReceived;
        /// <summary>A new game started.</summary>
        public event Action<GameStart> GameStarted;
        /// <summary>The room changed.</summary>
        public event Action<RoomState> RoomStateChanged;
        /// <summary>The answer to <see cref="LeaveRoom"/>: out of the room (close after it to give the seat up cleanly).</summary>
        public event Action<RoomLeft> RoomLeftReceived;
        /// <summary>The game ended.</summary>
        public event Action<GameOver> GameEnded;
        /// <summary>A <c>pong</c> arrived.</summary>
        public event Action<Pong> PongReceived;
        /// <summary>The players' checksums for a frame disagree (see <see cref="SendChecksum"/>).</summary>
        public event Action<Desync> DesyncDetected;
        /// <summary>The server refused a request, or frames could not be reloaded.</summary>
        public event Action<ServerError> ErrorReceived;
        /// <summary>The connection dropped; reconnecting.</summary>
        public event Action<ReconnectingEvent> Reconnecting;
        /// <summary>Connected again.</summary>
        public event Action<ReconnectedEvent> Reconnected;
        /// <summary>The tokens were refreshed.</summary>
        public event Action<Session> SessionRefreshed;
        /// <summary>A background refresh failed.</summary>
        public event Action<RefreshFailedEvent> RefreshFailed;
        /// <summary>The session ended (null: closed by you); always the last event.</summary>
        public event Action<MovanException> Closed;

        /// <summary>
        /// Raises the C# events for up to <paramref name="max"/> queued events, on the calling thread (Unity: call it
        /// from <c>Update()</c>). Returns how many it raised.
        /// </summary>
        public int Poll(int max = int.MaxValue)
        {
            int n = 0;
            GameEvent ev;
            while (n < max && events.TryTake(out ev))
            {
                n++;
                Dispatch(ev);
            }
            return n;
        }

        /// <summary>The next queued event, if any (instead of <see cref="Poll"/>; use one or the other).</summary>
        public bool TryNextEvent(out GameEvent ev)
        {
            return events.TryTake(out ev);
        }

        /// <summary>The next event, waiting up to <paramref name="timeout"/>; null on timeout, or once the session ended and every event was taken.</summary>
        public GameEvent NextEvent(TimeSpan timeout)
        {
            GameEvent ev;
            double ms = timeout.TotalMilliseconds;
            return events.Take(out ev, ms < 0 ? -1 : ms > int.MaxValue ? int.MaxValue : (int)ms) ? ev : null;
        }

        // ---- state (of the network side: events may still be queued) ----

        /// <summary>The session in use (a refreshed one after a refresh).</summary>
        public Session Session { get { lock (gate) return session; } }
        /// <summary>The running game's <c>game_start</c>, or null.</summary>
        public GameStart Game { get { lock (gate) return core.Game; } }
        /// <summary>The room <see cref="Spectate"/> watches, watched again after a reconnect; null when not watching.</summary>
        public string Watching { get { lock (gate) return core.Watching; } }
        /// <summary>The next frame number the session will queue.</summary>
        public long NextFrame { get { lock (gate) return core.NextFrame; } }
        /// <summary>True while the connection is down and the session is getting it back.</summary>
        public bool IsReconnecting { get { lock (gate) return core.IsReconnecting; } }
        /// <summary>True once the session ended.</summary>
        public bool IsClosed { get { return ended; } }
        /// <summary>Why it ended (null after <see cref="Close"/>).</summary>
        public MovanException CloseReason { get { lock (gate) return core.CloseReason; } }
        /// <summary>True when the connection is sealed (the server runs with encryption, as by default).</summary>
        public bool IsSealed { get; private set; }
        /// <summary>Frames that came from reloads rather than live, so far.</summary>
        public long ReloadedFrames { get { lock (gate) return core.ReloadedFrames; } }
        /// <summary>Events waiting to be taken.</summary>
        public int QueuedEvents { get { return events.Count; } }

        // ---- requests ----

        /// <summary><c>room_enter</c>: joins <paramref name="roomId"/> (created when missing), or quick-matches when null.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Closed"/> (ended, or reconnecting), <see cref="ErrorKind.QueueFull"/>.</exception>
        public void EnterRoom(string roomId = null)
        {
            Enqueue("room_enter", ClientMessages.RoomEnterData(roomId), null, null);
        }

        /// <summary>
        /// <c>room_spectate</c>: watch <paramref name="roomId"/> without playing. Frames arrive as for a player (the
        /// history first, then live, <c>sync.spectator_delay_frames</c> behind), each once and in order. The room is
        /// remembered (<see cref="Watching"/>): a spectator has no seat to come back to, so after a reconnect the
        /// session sends <c>room_spectate</c> again by itself, does not show the repeated <c>game_start</c> and drops
        /// the history frames it already delivered, like the Rust SDK's <c>GameClient</c>. Watching ends with
        /// <see cref="LeaveRoom"/>, <c>room_left</c>, <c>game_over</c>, or an error refusing the
        /// <c>room_spectate</c> (<c>room_not_found</c> after a reconnect: the game ended meanwhile, and
        /// <see cref="Game"/> becomes null).
        /// </summary>
        public void Spectate(string roomId)
        {
            if (roomId == null) throw new ArgumentNullException("roomId");
            // Remembered before the send, so that the answer (read on another thread) finds it.
            lock (gate) core.OnSpectate(roomId);
            try
            {
                Enqueue(ClientMessages.SpectateProto, ClientMessages.RoomEnterData(roomId), null, null);
            }
            catch (Exception)
            {
                lock (gate) core.OnSpectateNotSent();
                throw;
            }
        }

        /// <summary><c>room_leave</c>; also ends watching (<see cref="Watching"/>), even when the send fails.</summary>
        public void LeaveRoom()
        {
            lock (gate) core.OnLeaveRoom();
            Enqueue("room_leave", null, null, null);
        }

        /// <summary><c>room_prepare</c>: marks the player ready.</summary>
        public void Prepare()
        {
            Enqueue("room_prepare", null, null, null);
        }

        /// <summary>
        /// <c>sync_action</c>: <paramref name="actionJson"/> (a JSON object) for the next frame, stamped now unless
        /// <paramref name="timestamp"/> (Unix seconds) is given. Fails while reconnecting: an action sent then is lost,
        /// as on any dropped connection.
        /// </summary>
        /// <exception cref="ArgumentException">Not a JSON object nested at most 32 deep.</exception>
        /// <exception cref="MovanException"><see cref="ErrorKind.Closed"/>, <see cref="ErrorKind.TooLarge"/>, <see cref="ErrorKind.QueueFull"/>.</exception>
        public void SendAction(string actionJson, double? timestamp = null)
        {
            Enqueue("sync_action", null, ClientMessages.CheckAction(actionJson), timestamp);
        }

        /// <summary><c>sync_action</c> with a built or parsed object.</summary>
        public void SendAction(JsonValue action, double? timestamp = null)
        {
            Enqueue("sync_action", null, ClientMessages.ActionJson(action), timestamp);
        }

        /// <summary>
        /// <c>sync_checksum</c>: your hash (1 to 64 bytes, e.g. hex) of the game state after applying
        /// <paramref name="frame"/>; send one for every frame that is a multiple of
        /// <see cref="GameStart.ChecksumInterval"/>. When the members' hashes differ, each gets a <see cref="Desync"/>.
        /// </summary>
        /// <exception cref="ArgumentException">A hash of 0 or more than 64 bytes.</exception>
        public void SendChecksum(long frame, string hash)
        {
            Enqueue("sync_checksum", ClientMessages.ChecksumData(frame, hash), null, null);
        }

        /// <summary><c>ping</c>; the answer is a <see cref="Pong"/> with the round trip and clock offset.</summary>
        public void Ping()
        {
            Enqueue("ping", null, null, null);
        }

        /// <summary>
        /// UDP only: moves the connection to a new local port, as after a network change (Wi-Fi to mobile data),
        /// and queues a <c>ping</c>, which moves the server's replies to the new address once it opens. The game goes
        /// on with no reconnect and no reload (docs/protocol.md §2.2, "Address changes"). Returns the new local address.
        /// </summary>
        /// <exception cref="InvalidOperationException">Not a UDP session.</exception>
        /// <exception cref="MovanException"><see cref="ErrorKind.Closed"/> (ended, or reconnecting), <see cref="ErrorKind.Network"/>.</exception>
        public System.Net.EndPoint Rebind()
        {
            if (ended) throw new MovanException(ErrorKind.Closed, "the game session has ended");
            SyncConnection conn = current;
            if (conn == null || !linkUp) throw new MovanException(ErrorKind.Closed, "reconnecting: the sync connection is down");
            System.Net.EndPoint local = conn.RebindSocket();
            Enqueue("ping", null, null, null);
            return local;
        }

        /// <summary>
        /// Ends the session: stops reconnecting and closes the connection once the messages already queued are
        /// written. Queues a <see cref="ClosedEvent"/> with no error. The server keeps the seat for
        /// <c>sync.reconnect_grace_secs</c>, as after any drop; call <see cref="LeaveRoom"/> first to give it up at once.
        /// </summary>
        public void Close()
        {
            lock (gate)
            {
                if (core.IsClosed) return;
                core.Close(null);
                SyncConnection toClose = current;
                current = null;
                linkUp = false;
                // After the sends queued before it: a LeaveRoom() right before Close() still goes out.
                inbox.Add(new Work { Kind = WorkKind.Close, Conn = toClose }, true);
                Pump();
            }
            Notify();
        }

        /// <summary>Same as <see cref="Close"/>.</summary>
        public void Dispose()
        {
            Close();
        }

        private void Enqueue(string proto, string dataJson, string actionJson, double? timestamp)
        {
            if (ended) throw new MovanException(ErrorKind.Closed, "the game session has ended");
            if (!linkUp) throw new MovanException(ErrorKind.Closed, "reconnecting: the sync connection is down");
            byte[] body = ClientMessages.Envelope(session.Uid, null, proto, timestamp ?? UnixTime.Now(), dataJson,
                actionJson);
            int wire = body.Length + SessionCrypto.TagSize;
            if (wire > options.MaxFrameBytes)
            {
                throw new MovanException(ErrorKind.TooLarge,
                    "a " + wire + "-byte message is above the server's " + options.MaxFrameBytes + "-byte limit");
            }
            lock (writeLock)
            {
                // Written at once when nothing waits before it and the socket has room: a small write into a
                // writable socket does not block, and it saves waking the driver. Otherwise the driver writes it.
                SyncConnection conn = current;
                if (queuedSends == 0 && conn != null && conn.CanSendWithoutBlocking)
                {
                    SendOn(conn, body);
                    Volatile.Write(ref lastDirectSend, Now());
                    return;
                }
                if (!inbox.TryAdd(new Work { Kind = WorkKind.Send, Body = body, Conn = conn }))
                {
                    if (ended) throw new MovanException(ErrorKind.Closed, "the game session has ended");
                    throw new MovanException(ErrorKind.QueueFull,
                        options.MaxQueuedSends + " messages are already waiting to be written");
                }
                queuedSends++;
            }
        }

        private void Dispatch(GameEvent ev)
        {
            var frame = ev as FrameEvent;
            if (frame != null)
            {
                Raise(FrameReceived, frame.Frame);
                return;
            }
            var start = ev as GameStartEvent;
            if (start != null) { Raise(GameStarted, start.Start); return; }
            var state = ev as RoomStateEvent;
            if (state != null) { Raise(RoomStateChanged, state.State); return; }
            var left = ev as RoomLeftEvent;
            if (left != null) { Raise(RoomLeftReceived, left.Left); return; }
            var over = ev as GameOverEvent;
            if (over != null) { Raise(GameEnded, over.Over); return; }
            var pong = ev as PongEvent;
            if (pong != null) { Raise(PongReceived, pong.Pong); return; }
            var desync = ev as DesyncEvent;
            if (desync != null) { Raise(DesyncDetected, desync.Desync); return; }
            var err = ev as ErrorEvent;
            if (err != null) { Raise(ErrorReceived, err.Error); return; }
            var ring = ev as ReconnectingEvent;
            if (ring != null) { Raise(Reconnecting, ring); return; }
            var back = ev as ReconnectedEvent;
            if (back != null) { Raise(Reconnected, back); return; }
            var fresh = ev as SessionRefreshedEvent;
            if (fresh != null) { Raise(SessionRefreshed, fresh.Session); return; }
            var failed = ev as RefreshFailedEvent;
            if (failed != null) { Raise(RefreshFailed, failed); return; }
            var closed = ev as ClosedEvent;
            if (closed != null) Raise(Closed, closed.Error);
        }

        private static void Raise<T>(Action<T> handler, T arg)
        {
            if (handler != null) handler(arg);
        }

        private sealed class Listener : IServerMessageListener
        {
            private readonly GameSession owner;

            public Listener(GameSession owner)
            {
                this.owner = owner;
            }

            public void OnMessage(SyncConnection connection, ServerMessage message)
            {
                owner.OnMessage(connection, message);
            }

            public void OnClosed(SyncConnection connection, MovanException reason)
            {
                owner.OnClosed(connection, reason);
            }
        }
    }
}
