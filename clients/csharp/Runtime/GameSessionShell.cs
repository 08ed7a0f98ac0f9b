using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Movan.Client
{
    /// <summary>The shell of <see cref="GameSession"/>: the reader's callbacks, the driver thread, reconnects and refreshes.</summary>
    public sealed partial class GameSession
    {
        private static long Now()
        {
            return Clock.ElapsedMilliseconds;
        }

        private static long RemainingSecs(Session s)
        {
            if (s.ReceivedAt == default(DateTime)) return s.ExpiresIn;
            return s.ExpiresIn - (long)(DateTime.UtcNow - s.ReceivedAt).TotalSeconds;
        }

        private SyncConnectOptions ConnectOptions(Session s)
        {
            return new SyncConnectOptions
            {
                Address = address,
                Uid = s.Uid,
                Token = s.Token,
                SessionKey = s.SessionKey,
                Aead = options.Aead,
                Transport = options.Transport,
                ConnectTimeout = options.ConnectTimeout,
                HandshakeTimeout = options.HandshakeTimeout,
                MaxFrameBytes = options.MaxFrameBytes,
            };
        }

        /// <summary>Moves the core's events to the application's queue; ends the session's queues once the core closed. Under <see cref="gate"/>.</summary>
        private bool Pump()
        {
            // Closed before the ClosedEvent becomes visible, so whoever takes it sees IsClosed.
            bool ending = core.IsClosed && !ended;
            if (ending)
            {
                ended = true;
                linkUp = false;
            }
            bool moved = false;
            GameEvent ev;
            while (core.TryGetEvent(out ev))
            {
                events.Add(ev, true);
                moved = true;
            }
            if (ending)
            {
                events.Close();
                // The driver stops at it, and closes the connection (if any is left) after what was queued before.
                inbox.Add(new Work { Kind = WorkKind.Close, Conn = current }, true);
                current = null;
            }
            return moved;
        }

        private void Notify()
        {
            Action cb = options.EventsQueued;
            if (cb != null) cb();
        }

        private void OnMessage(SyncConnection conn, ServerMessage m)
        {
            // Backpressure: while the game does not take events, stop reading the socket.
            events.WaitBelow(options.MaxQueuedEvents);
            bool moved;
            lock (gate)
            {
                if (conn != current) return;
                core.OnMessage(m, Now());
                moved = Pump();
                if (core.HasCommands) inbox.Add(WakeWork, true);
            }
            if (moved) Notify();
        }

        private void OnClosed(SyncConnection conn, MovanException reason)
        {
            lock (gate)
            {
                if (conn != current) return;
                current = null;
                linkUp = false;
                core.OnConnectionLost(reason, Now());
                Pump();
                inbox.Add(WakeWork, true);
            }
            Notify();
        }

        private void DriverLoop()
        {
            var todo = new List<SessionCommand>();
            while (!stopDriver)
            {
                long wait;
                lock (gate)
                {
                    long deadline = core.NextDeadline;
                    wait = deadline == long.MaxValue ? -1 : Math.Max(0, Math.Min(int.MaxValue, deadline - Now()));
                }
                Work w;
                bool sent = false;
                if (inbox.Take(out w, (int)wait))
                {
                    do
                    {
                        if (w.Kind == WorkKind.Close)
                        {
                            if (w.Conn != null) w.Conn.Close();
                            stopDriver = true;
                            break;
                        }
                        sent |= Handle(w);
                    } while (inbox.TryTake(out w));
                    if (stopDriver) break;
                }
                SyncConnection conn;
                bool moved;
                lock (gate)
                {
                    long now = Now();
                    if (sent) core.OnSent(now);
                    core.OnSent(Volatile.Read(ref lastDirectSend));
                    if (events.Count >= options.MaxQueuedEvents) core.OnStalled(now);
                    core.Tick(now);
                    SessionCommand c;
                    while (core.TryGetCommand(out c)) todo.Add(c);
                    conn = current;
                    if (todo.Exists(x => x.Kind == CommandKind.Disconnect))
                    {
                        current = null;
                        linkUp = false;
                    }
                    moved = Pump();
                }
                if (moved) Notify();
                foreach (SessionCommand c in todo) Execute(c, conn);
                todo.Clear();
            }
        }

        /// <summary>One inbox item; true when it wrote to the connection.</summary>
        private bool Handle(Work w)
        {
            switch (w.Kind)
            {
                case WorkKind.Send:
                    lock (writeLock)
                    {
                        queuedSends--;
                        return SendOn(w.Conn, w.Body);
                    }
                case WorkKind.Refreshed:
                {
                    bool moved;
                    lock (gate)
                    {
                        if (w.Session != null)
                        {
                            if (options.SyncAddress == null)
                            {
                                // Reconnects stay on the server that holds the seat, whichever the refresh named.
                                w.Session.SyncAddr = session.SyncAddr;
                                w.Session.SyncUdpAddr = session.SyncUdpAddr;
                            }
                            session = w.Session;
                        }
                        core.OnRefreshed(w.Session, w.Error, Now());
                        moved = Pump();
                    }
                    if (moved) Notify();
                    return false;
                }
                default:
                    return false;
            }
        }

        private SyncConnection CurrentConnection()
        {
            lock (gate) return current;
        }

        /// <summary>Writes one body; a failure is the connection's end, which its reader reports.</summary>
        private static bool SendOn(SyncConnection conn, byte[] body)
        {
            if (conn == null) return false;
            try
            {
                conn.SendBody(body);
                return true;
            }
            catch (MovanException)
            {
                return false;
            }
        }

        private void Execute(SessionCommand c, SyncConnection conn)
        {
            switch (c.Kind)
            {
                case CommandKind.Ping:
                    SendOn(conn, ClientMessages.Envelope(session.Uid, null, "ping", UnixTime.Now(), null, null));
                    break;
                case CommandKind.RequestReload:
                    SendOn(conn, ClientMessages.Envelope(session.Uid, null, ClientMessages.ReloadProto, UnixTime.Now(),
                        ClientMessages.ReloadData(c.StartFrame), null));
                    break;
                case CommandKind.Spectate:
                    SendOn(conn, ClientMessages.Envelope(session.Uid, null, ClientMessages.SpectateProto, UnixTime.Now(),
                        ClientMessages.RoomEnterData(c.RoomId), null));
                    break;
                case CommandKind.Disconnect:
                    if (conn != null) conn.Close();
                    break;
                case CommandKind.Refresh:
                    StartRefresh();
                    break;
                case CommandKind.Connect:
                    Reconnect();
                    break;
            }
        }

        private void StartRefresh()
        {
            AccountClient account = options.Account;
            string token;
            lock (gate) token = session.RefreshToken;
            Task<Session> t;
            try
            {
                t = account.RefreshAsync(token);
            }
            catch (Exception e)
            {
                t = Task.FromException<Session>(e);
            }
            t.ContinueWith(done =>
            {
                var w = new Work { Kind = WorkKind.Refreshed };
                if (done.Status == TaskStatus.RanToCompletion)
                {
                    w.Session = done.Result;
                }
                else
                {
                    Exception e = done.Exception != null ? done.Exception.GetBaseException() : null;
                    w.Error = e as MovanException ??
                        new MovanException(ErrorKind.Network, "refresh failed: " + (e != null ? e.Message : "cancelled"), e);
                }
                inbox.Add(w, true);
            }, TaskContinuationOptions.ExecuteSynchronously);
        }

        /// <summary>One reconnect attempt, on the driver thread (nothing else can be sent meanwhile anyway).</summary>
        private void Reconnect()
        {
            Session s;
            lock (gate) s = session;
            SyncConnection conn = null;
            MovanException error = null;
            try
            {
                conn = SyncConnection.Open(ConnectOptions(s));
            }
            catch (MovanException e)
            {
                error = e;
            }
            bool moved;
            lock (gate)
            {
                if (core.IsClosed)
                {
                    if (conn != null) conn.Close();
                    return;
                }
                if (conn != null)
                {
                    current = conn;
                    linkUp = true;
                    core.OnConnected(Now());
                }
                else
                {
                    core.OnConnectFailed(error, Now());
                }
                moved = Pump();
                inbox.Add(WakeWork, true);
            }
            if (conn != null) conn.Start(listener);
            if (moved) Notify();
        }
    }
}
