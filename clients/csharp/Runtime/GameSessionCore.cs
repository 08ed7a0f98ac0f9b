using System;
using System.Collections.Generic;

namespace Movan.Client
{
    /// <summary>What <see cref="GameSessionCore"/> asks its shell to do.</summary>
    public enum CommandKind
    {
        /// <summary>Open a new connection, then report <see cref="GameSessionCore.OnConnected"/> or <see cref="GameSessionCore.OnConnectFailed"/>.</summary>
        Connect,
        /// <summary>Send a <c>ping</c> on the current connection.</summary>
        Ping,
        /// <summary>Send <c>sync_request_reload_frames</c> from <see cref="SessionCommand.StartFrame"/>.</summary>
        RequestReload,
        /// <summary>Send <c>room_spectate</c> for <see cref="SessionCommand.RoomId"/>: watch again after a reconnect.</summary>
        Spectate,
        /// <summary>Refresh the session at the account server, then report <see cref="GameSessionCore.OnRefreshed"/>.</summary>
        Refresh,
        /// <summary>Close the current connection: it is dead (the core already counts it as lost).</summary>
        Disconnect,
    }

    /// <summary>One command of <see cref="GameSessionCore"/>.</summary>
    public struct SessionCommand
    {
        public SessionCommand(CommandKind kind, long startFrame) : this(kind, startFrame, null)
        {
        }

        public SessionCommand(CommandKind kind, long startFrame, string roomId)
        {
            Kind = kind;
            StartFrame = startFrame;
            RoomId = roomId;
        }

        public CommandKind Kind { get; private set; }
        /// <summary>For <see cref="CommandKind.RequestReload"/>.</summary>
        public long StartFrame { get; private set; }
        /// <summary>For <see cref="CommandKind.Spectate"/>.</summary>
        public string RoomId { get; private set; }

        public override string ToString()
        {
            if (Kind == CommandKind.RequestReload) return "RequestReload(" + StartFrame + ")";
            return Kind == CommandKind.Spectate ? "Spectate(" + RoomId + ")" : Kind.ToString();
        }
    }

    /// <summary>
    /// The whole behaviour of <see cref="GameSession"/> with no sockets, threads or clock: reconnect with backoff,
    /// rebind and reload (or watch again, for a spectator), every frame exactly once and in order, idle pings,
    /// dead-connection detection and token refresh. Feed it what happened (<c>On...</c>, <see cref="Tick"/>) with the current time in milliseconds of any
    /// monotonic clock; take what to do from <see cref="TryGetCommand"/> and what to show from
    /// <see cref="TryGetEvent"/>; call <see cref="Tick"/> again by <see cref="NextDeadline"/>. Not thread-safe.
    /// </summary>
    public sealed class GameSessionCore
    {
        private enum Phase { Waiting, Connecting, Refreshing }

        private sealed class Reconnect
        {
            public int Attempt;
            public long DelayMs;
            public long GiveUpAt;
            public long NextAt;
            public Phase Phase;
            public bool TriedRefresh;
        }

        private sealed class Reload
        {
            public long From;
            public long Deadline;
        }

        private readonly ReconnectPolicy policy;
        private readonly long keepaliveMs;
        private readonly long deadAfterMs;
        private readonly long refreshRetryMs;
        private readonly int maxBufferedFrames;
        private readonly bool canRefresh;
        private readonly Queue<GameEvent> events = new Queue<GameEvent>();
        private readonly Queue<SessionCommand> commands = new Queue<SessionCommand>();
        private readonly Dictionary<long, Frame> buffer = new Dictionary<long, Frame>();
        private bool connected;
        private Reconnect reconnect;
        private Reload reload;
        private ServerError lastError;
        private long lastSent;
        private long lastReceived;
        private long lastPing;
        private long refreshAt = long.MaxValue;
        private bool refreshInFlight;
        // What Watching was before the last OnSpectate, for an already_in_room answer.
        private string watchingBefore;

        /// <summary>A core for a session whose first connection is being opened.</summary>
        /// <param name="options">The timings: keepalive, dead-connection limit, refresh retry, reconnect policy.</param>
        /// <param name="canRefresh">An account client is there to refresh tokens (<see cref="CommandKind.Refresh"/>).</param>
        public GameSessionCore(GameSessionOptions options, bool canRefresh)
        {
            policy = options.Policy ?? new ReconnectPolicy();
            keepaliveMs = Ms(options.Keepalive);
            deadAfterMs = Ms(options.DeadAfter);
            refreshRetryMs = Math.Max(1000, Ms(options.RefreshRetry));
            maxBufferedFrames = Math.Max(1, options.MaxBufferedFrames);
            this.canRefresh = canRefresh;
        }

        /// <summary>The running game's <c>game_start</c>, or null.</summary>
        public GameStart Game { get; private set; }
        /// <summary>The next frame number to deliver.</summary>
        public long NextFrame { get; private set; }
        /// <summary>True while a connection is up.</summary>
        public bool IsConnected { get { return connected; } }
        /// <summary>True while the connection is down and the core is getting it back.</summary>
        public bool IsReconnecting { get { return reconnect != null; } }
        /// <summary>True once the session ended (a <see cref="ClosedEvent"/> was queued).</summary>
        public bool IsClosed { get; private set; }
        /// <summary>Why it ended; null after a close by the application.</summary>
        public MovanException CloseReason { get; private set; }
        /// <summary>Frames delivered from <c>reload_frames</c> so far (the rest came live).</summary>
        public long ReloadedFrames { get; private set; }
        /// <summary>Frames held beyond a gap, waiting for a reload.</summary>
        public int BufferedFrames { get { return buffer.Count; } }
        /// <summary>
        /// The room the application spectates (<see cref="OnSpectate"/>), watched again after every reconnect, or
        /// null: cleared by <see cref="OnLeaveRoom"/>, <c>room_left</c>, <c>game_over</c>, and an <c>error</c>
        /// refusing the <c>room_spectate</c>.
        /// </summary>
        public string Watching { get; private set; }

        /// <summary>True when commands wait in <see cref="TryGetCommand"/>.</summary>
        public bool HasCommands { get { return commands.Count > 0; } }

        /// <summary>The next command, if any.</summary>
        public bool TryGetCommand(out SessionCommand command)
        {
            if (commands.Count == 0)
            {
                command = default(SessionCommand);
                return false;
            }
            command = commands.Dequeue();
            return true;
        }

        /// <summary>The next event, if any.</summary>
        public bool TryGetEvent(out GameEvent ev)
        {
            if (events.Count == 0)
            {
                ev = null;
                return false;
            }
            ev = events.Dequeue();
            return true;
        }

        /// <summary>When <see cref="Tick"/> has something to do next; <c>long.MaxValue</c> for never.</summary>
        public long NextDeadline
        {
            get
            {
                if (IsClosed) return long.MaxValue;
                long next = long.MaxValue;
                if (reconnect != null && reconnect.Phase == Phase.Waiting) next = Math.Min(next, reconnect.NextAt);
                if (connected)
                {
                    if (keepaliveMs > 0)
                    {
                        next = Math.Min(next, lastSent + keepaliveMs);
                        next = Math.Min(next, Math.Max(lastReceived, lastPing) + keepaliveMs);
                    }
                    if (deadAfterMs > 0) next = Math.Min(next, lastReceived + deadAfterMs);
                    if (reload != null) next = Math.Min(next, reload.Deadline);
                }
                if (canRefresh && !refreshInFlight) next = Math.Min(next, refreshAt);
                return next;
            }
        }

        // ---- inputs ----

        /// <summary>A session was issued (the login's, or a refresh's) that expires <paramref name="expiresInSecs"/> after <paramref name="now"/>: schedules the background refresh.</summary>
        public void OnSessionIssued(long expiresInSecs, long now)
        {
            if (!canRefresh || expiresInSecs <= 0) return;
            // Refresh 5 minutes before the token expires, or at 80 % of a short lifetime.
            long ttl = expiresInSecs * 1000;
            refreshAt = now + Math.Max(ttl * 4 / 5, ttl - 300000);
        }

        /// <summary>A connection is up: the first one, or a reconnect (then a <see cref="ReconnectedEvent"/> and a reload follow).</summary>
        public void OnConnected(long now)
        {
            if (IsClosed) return;
            connected = true;
            lastSent = now;
            lastReceived = now;
            lastPing = now;
            lastError = null;
            Reconnect was = reconnect;
            reconnect = null;
            if (was == null) return;
            events.Enqueue(new ReconnectedEvent(was.Attempt, Game != null ? NextFrame : -1));
            if (Watching != null)
            {
                // A spectator has no seat to rebind: watch again. The answer repeats the game_start (not shown
                // again) and the history from its oldest frame (the delivered ones are dropped), then live frames.
                watchingBefore = null;
                commands.Enqueue(new SessionCommand(CommandKind.Spectate, 0, Watching));
                OnSent(now);
            }
            else if (Game != null)
            {
                StartReload(now);
            }
        }

        /// <summary>The application sends <c>room_spectate</c> for <paramref name="roomId"/> (call it before the send): remembered, to watch again after a reconnect.</summary>
        public void OnSpectate(string roomId)
        {
            watchingBefore = Watching;
            Watching = roomId;
        }

        /// <summary>The application's <c>room_spectate</c> could not be sent: what was watched before still is.</summary>
        public void OnSpectateNotSent()
        {
            Watching = watchingBefore;
        }

        /// <summary>The application sends <c>room_leave</c>: watching ends (even if the send fails).</summary>
        public void OnLeaveRoom()
        {
            Watching = null;
        }

        /// <summary>Something was sent on the connection (the application's requests count: they keep it alive).</summary>
        public void OnSent(long now)
        {
            if (now > lastSent) lastSent = now;
        }

        /// <summary>The application is not taking events, so the shell paused reading on purpose: silence now is not a dead connection.</summary>
        public void OnStalled(long now)
        {
            if (connected && now > lastReceived) lastReceived = now;
        }

        /// <summary>A message arrived on the current connection.</summary>
        public void OnMessage(ServerMessage m, long now)
        {
            if (IsClosed || !connected) return;
            lastReceived = now;
            var frame = m as Frame;
            if (frame != null)
            {
                AcceptFrame(frame);
                if (buffer.Count > 0 && reload == null) StartReload(now);
                return;
            }
            var chunk = m as ReloadChunk;
            if (chunk != null)
            {
                OnReloadChunk(chunk, now);
                return;
            }
            var start = m as GameStart;
            if (start != null)
            {
                // A reconnect or replacement sends the same game_start again.
                if (Game != null && Game.RoomId == start.RoomId && Game.StartTime == start.StartTime) return;
                ResetGame();
                Game = start;
                events.Enqueue(new GameStartEvent(start));
                return;
            }
            var over = m as GameOver;
            if (over != null)
            {
                ResetGame();
                Watching = null;
                events.Enqueue(new GameOverEvent(over));
                return;
            }
            var err = m as ServerError;
            if (err != null)
            {
                OnServerError(err);
                return;
            }
            var state = m as RoomState;
            if (state != null)
            {
                events.Enqueue(new RoomStateEvent(state));
                return;
            }
            var left = m as RoomLeft;
            if (left != null)
            {
                Watching = null;
                events.Enqueue(new RoomLeftEvent(left));
                return;
            }
            var pong = m as Pong;
            if (pong != null)
            {
                events.Enqueue(new PongEvent(pong));
                return;
            }
            var desync = m as Desync;
            if (desync != null) events.Enqueue(new DesyncEvent(desync));
        }

        /// <summary>The current connection ended: <paramref name="reason"/> null for a plain close by the server.</summary>
        public void OnConnectionLost(MovanException reason, long now)
        {
            if (IsClosed || !connected) return;
            Drop(reason, now);
        }

        /// <summary>A <see cref="CommandKind.Connect"/> failed.</summary>
        public void OnConnectFailed(MovanException error, long now)
        {
            if (IsClosed || reconnect == null || reconnect.Phase != Phase.Connecting) return;
            if (error.SyncCode == ErrorCode.TokenExpired && canRefresh && !reconnect.TriedRefresh)
            {
                reconnect.TriedRefresh = true;
                reconnect.Phase = Phase.Refreshing;
                if (!refreshInFlight)
                {
                    refreshInFlight = true;
                    commands.Enqueue(new SessionCommand(CommandKind.Refresh, 0));
                }
                return;
            }
            Retry(error, now);
        }

        /// <summary>A <see cref="CommandKind.Refresh"/> finished: <paramref name="session"/> on success, else <paramref name="error"/>.</summary>
        public void OnRefreshed(Session session, MovanException error, long now)
        {
            if (IsClosed) return;
            refreshInFlight = false;
            bool forReconnect = reconnect != null && reconnect.Phase == Phase.Refreshing;
            if (session != null)
            {
                events.Enqueue(new SessionRefreshedEvent(session));
                OnSessionIssued(session.ExpiresIn, now);
                if (forReconnect)
                {
                    reconnect.Phase = Phase.Connecting;
                    commands.Enqueue(new SessionCommand(CommandKind.Connect, 0));
                }
                return;
            }
            bool permanent = error.HttpStatus == 401 || error.HttpStatus == 403;
            refreshAt = permanent ? long.MaxValue : now + refreshRetryMs;
            if (forReconnect)
            {
                reconnect.Phase = Phase.Connecting;
                if (permanent)
                {
                    End(error);
                    return;
                }
                Retry(error, now);
                return;
            }
            events.Enqueue(new RefreshFailedEvent(error, !permanent));
        }

        /// <summary>Runs the timers: reconnect attempts, idle pings, dead connections, reload timeouts, refreshes.</summary>
        public void Tick(long now)
        {
            if (IsClosed) return;
            if (reconnect != null && reconnect.Phase == Phase.Waiting && now >= reconnect.NextAt)
            {
                reconnect.Phase = Phase.Connecting;
                commands.Enqueue(new SessionCommand(CommandKind.Connect, 0));
            }
            if (connected)
            {
                if (deadAfterMs > 0 && now - lastReceived >= deadAfterMs)
                {
                    commands.Enqueue(new SessionCommand(CommandKind.Disconnect, 0));
                    Drop(new MovanException(ErrorKind.Timeout,
                        "nothing from the sync server for " + (now - lastReceived) / 1000 + " s"), now);
                }
                else
                {
                    bool idle = now - lastSent >= keepaliveMs;
                    bool quiet = now - Math.Max(lastReceived, lastPing) >= keepaliveMs;
                    if (keepaliveMs > 0 && (idle || quiet))
                    {
                        commands.Enqueue(new SessionCommand(CommandKind.Ping, 0));
                        lastSent = now;
                        lastPing = now;
                    }
                    if (reload != null && now >= reload.Deadline)
                    {
                        long from = reload.From;
                        reload = null;
                        SkipGap("timeout", "the reload from frame " + from + " did not finish in time", null);
                    }
                }
            }
            if (canRefresh && !refreshInFlight && now >= refreshAt)
            {
                refreshInFlight = true;
                refreshAt = long.MaxValue;
                commands.Enqueue(new SessionCommand(CommandKind.Refresh, 0));
            }
        }

        /// <summary>Ends the session: <paramref name="reason"/> null for a close by the application.</summary>
        public void Close(MovanException reason)
        {
            End(reason);
        }

        // ---- frames ----

        private void ResetGame()
        {
            Game = null;
            NextFrame = 0;
            buffer.Clear();
            reload = null;
        }

        /// <summary>Delivers the next frame (then the buffered ones that follow), drops one already delivered, buffers one ahead.</summary>
        private void AcceptFrame(Frame f)
        {
            long n = f.FrameCount;
            if (n < NextFrame) return;
            if (n > NextFrame)
            {
                // When full, drop it: the reload that fills the gap brings it again.
                if (buffer.Count < maxBufferedFrames && !buffer.ContainsKey(n)) buffer[n] = f;
                return;
            }
            Deliver(f);
            DrainBuffer();
        }

        private void Deliver(Frame f)
        {
            NextFrame = f.FrameCount + 1;
            events.Enqueue(new FrameEvent(f));
        }

        private void DrainBuffer()
        {
            Frame next;
            while (buffer.TryGetValue(NextFrame, out next))
            {
                buffer.Remove(NextFrame);
                Deliver(next);
            }
        }

        private void StartReload(long now)
        {
            if (reload != null || !connected) return;
            reload = new Reload { From = NextFrame, Deadline = now + Ms(policy.ReloadTimeout) };
            commands.Enqueue(new SessionCommand(CommandKind.RequestReload, NextFrame));
            OnSent(now);
        }

        private void OnReloadChunk(ReloadChunk chunk, long now)
        {
            long before = NextFrame;
            foreach (Frame f in chunk.Frames) AcceptFrame(f);
            ReloadedFrames += Math.Max(0, Math.Min(NextFrame, chunk.StartFrame + chunk.Frames.Count) - Math.Max(before, chunk.StartFrame));
            if (!chunk.Last || reload == null) return;
            long from = reload.From;
            reload = null;
            if (buffer.Count == 0) return;
            // Still a gap: ask again if this reload made progress, otherwise deliver what we have.
            if (NextFrame > from) StartReload(now);
            else SkipGap("protocol", "the reload from frame " + from + " did not fill the gap", null);
        }

        /// <summary>Gives up on missing frames: reports them, then delivers the buffered frames from the first one on, rather than stall the game.</summary>
        private void SkipGap(string code, string why, string proto)
        {
            if (buffer.Count == 0) return;
            long first = long.MaxValue;
            foreach (long k in buffer.Keys) first = Math.Min(first, k);
            events.Enqueue(new ErrorEvent(new ServerError(code,
                "frames " + NextFrame + ".." + first + " are missing and the reload failed: " + why, proto)));
            NextFrame = first;
            DrainBuffer();
        }

        private void OnServerError(ServerError err)
        {
            lastError = err;
            if (err.ErrorProto == ClientMessages.SpectateProto && Watching != null)
            {
                if (err.Code == ErrorCode.AlreadyInRoom)
                {
                    Watching = watchingBefore; // Refused: whatever was watched before still is.
                }
                else
                {
                    // Not watching: the room is gone (its game ended, maybe during a drop), full, or the request bad.
                    Watching = null;
                    if (err.Code == ErrorCode.RoomNotFound) ResetGame();
                }
            }
            if (err.ErrorProto == ClientMessages.ReloadProto && reload != null)
            {
                reload = null;
                if (err.Code == ErrorCode.NotInRoom)
                {
                    // The grace period ran out and the game went on without us (or it is over).
                    ResetGame();
                    events.Enqueue(new ErrorEvent(err));
                    return;
                }
                if (buffer.Count > 0)
                {
                    SkipGap(err.CodeText, err.Message, err.ErrorProto);
                    return;
                }
            }
            events.Enqueue(new ErrorEvent(err));
        }

        // ---- drops and reconnects ----

        private void Drop(MovanException reason, long now)
        {
            connected = false;
            reload = null;
            ServerError last = lastError;
            lastError = null;
            if (last != null && last.IsFinal)
            {
                End(MovanException.FromServer(last));
                return;
            }
            if ((reason != null && reason.Kind == ErrorKind.Crypto) || !policy.Enabled)
            {
                End(reason);
                return;
            }
            long delay = Ms(policy.InitialDelay);
            reconnect = new Reconnect
            {
                Attempt = 1,
                DelayMs = delay,
                GiveUpAt = now + Ms(policy.GiveUpAfter),
                NextAt = now + delay,
                Phase = Phase.Waiting,
            };
            events.Enqueue(new ReconnectingEvent(1, reason != null ? reason.Message : "connection closed by the server"));
        }

        private void Retry(MovanException error, long now)
        {
            bool refused = error.Kind == ErrorKind.Crypto || (error.Kind == ErrorKind.Server && ErrorCodes.IsFinal(error.SyncCode));
            if (refused || now >= reconnect.GiveUpAt)
            {
                End(error);
                return;
            }
            reconnect.Attempt++;
            reconnect.DelayMs = Math.Min(reconnect.DelayMs * 2, Math.Max(1, Ms(policy.MaxDelay)));
            // The last attempt is made when the grace ends, not after it.
            reconnect.NextAt = Math.Min(now + reconnect.DelayMs, reconnect.GiveUpAt);
            reconnect.Phase = Phase.Waiting;
            reconnect.TriedRefresh = false;
            events.Enqueue(new ReconnectingEvent(reconnect.Attempt, error.Message));
        }

        private void End(MovanException reason)
        {
            if (IsClosed) return;
            IsClosed = true;
            CloseReason = reason;
            connected = false;
            reconnect = null;
            reload = null;
            buffer.Clear();
            events.Enqueue(new ClosedEvent(reason));
        }

        private static long Ms(TimeSpan t)
        {
            return (long)t.TotalMilliseconds;
        }
    }
}
