using System;
using System.Collections.Generic;
using System.Threading;

namespace Movan.Client
{
    /// <summary>How to open a <see cref="SyncConnection"/>.</summary>
    public sealed class SyncConnectOptions
    {
        /// <summary>The sync server, <c>host:port</c> (the login's <c>sync_addr</c>, or <c>sync_udp_addr</c> over UDP).</summary>
        public string Address;
        /// <summary>The login's uid.</summary>
        public string Uid;
        /// <summary>The login's access token (sent once, on the plaintext first message).</summary>
        public string Token;
        /// <summary>The login's <c>session_key</c> (base64 of 32 bytes); required unless the server runs with <c>encryption = "off"</c>.</summary>
        public string SessionKey;
        /// <summary>The AEAD to seal and open frames with; default <see cref="ManagedChaCha20Poly1305"/>.</summary>
        public IAead Aead;
        /// <summary>How to reach the server; default <see cref="TcpTransport.Factory"/>, or <see cref="UdpTransport.Factory"/> for UDP (KCP).</summary>
        public ISyncTransportFactory Transport;
        /// <summary>Longest wait for the TCP connect (or the UDP session set-up).</summary>
        public TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Longest wait for the handshake and the <c>pong</c>s after the connect, as in the Rust SDK.</summary>
        public TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);
        /// <summary>The server's <c>sync.max_frame_bytes</c>: larger messages are refused before sending.</summary>
        public int MaxFrameBytes = 65536;
        /// <summary>The largest server body accepted (16 MiB, docs/protocol.md §2).</summary>
        public int MaxServerFrameBytes = FrameDecoder.DefaultMaxServerFrame;
        /// <summary>Messages held for <see cref="SyncConnection.Receive"/> before the reader stops reading the socket.</summary>
        public int QueueCapacity = 1024;

        /// <summary>Options for a login's (or refresh's) session: its <c>sync_addr</c>, uid, token and key.</summary>
        public static SyncConnectOptions For(Session session)
        {
            return new SyncConnectOptions
            {
                Address = session.SyncAddr,
                Uid = session.Uid,
                Token = session.Token,
                SessionKey = session.SessionKey,
            };
        }

        /// <summary>Options for a session over UDP (KCP): its <c>sync_udp_addr</c> and <see cref="UdpTransport.Factory"/>.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Protocol"/>: the login names no UDP endpoint (the server runs without UDP).</exception>
        public static SyncConnectOptions ForUdp(Session session)
        {
            SyncConnectOptions o = For(session);
            o.Address = UdpAddressOf(session);
            o.Transport = UdpTransport.Factory;
            return o;
        }

        internal static string UdpAddressOf(Session session)
        {
            if (string.IsNullOrEmpty(session.SyncUdpAddr))
            {
                throw new MovanException(ErrorKind.Protocol, "the login names no sync_udp_addr: the sync server runs without UDP");
            }
            return session.SyncUdpAddr;
        }

        internal SyncConnectOptions Copy()
        {
            return (SyncConnectOptions)MemberwiseClone();
        }
    }

    /// <summary>Receives what a started <see cref="SyncConnection"/> reads, on its reader thread.</summary>
    public interface IServerMessageListener
    {
        /// <summary>One server message, in arrival order. Called on the reader thread: do not block for long.</summary>
        void OnMessage(SyncConnection connection, ServerMessage message);

        /// <summary>
        /// Called once, last, when the connection ended: <paramref name="reason"/> is null for a clean end of stream
        /// (or a close by this client, see <see cref="SyncConnection.ClosedByClient"/>), else why it failed.
        /// </summary>
        void OnClosed(SyncConnection connection, MovanException reason);
    }

    /// <summary>
    /// One connection to the sync server: runs the connection sequence (token, handshake, sealing), sends requests,
    /// and reads server messages on a background thread.
    /// </summary>
    /// <remarks>
    /// <para><see cref="Connect"/> returns once the connection is authenticated: it sends a plaintext <c>ping</c>
    /// carrying the token, reads the server's plaintext handshake, sends a sealed <c>ping</c> proving the session key
    /// and consumes both <c>pong</c>s. Messages the server sends meanwhile (<c>room_state</c> and <c>game_start</c>
    /// when rejoining) are kept and delivered first.</para>
    /// <para>Threads: sends are thread-safe and write on the calling thread. A background reader thread decodes
    /// messages into a bounded queue (<see cref="Receive"/>, <see cref="TryReceive"/>), or hands them to an
    /// <see cref="IServerMessageListener"/> when opened with <see cref="Open"/> and <see cref="Start"/>. For a
    /// connection that survives drops, and Unity's main thread, use <see cref="GameSession"/>.</para>
    /// <para>Every crypto failure is fatal: the connection closes and <see cref="CloseReason"/> says why.</para>
    /// </remarks>
    public sealed class SyncConnection : IDisposable
    {
        private readonly ISyncTransport transport;
        private readonly SyncConnectOptions options;
        private readonly object sendLock = new object();
        private readonly List<ServerMessage> held = new List<ServerMessage>();
        private FrameSealer sealer;
        private FrameOpener opener;
        private BoundedQueue<ServerMessage> queue;
        private readonly List<ServerMessage> pending = new List<ServerMessage>();
        private volatile bool closed;
        private volatile bool closedByClient;
        private int started;

        private SyncConnection(ISyncTransport transport, SyncConnectOptions options)
        {
            this.transport = transport;
            this.options = options;
        }

        /// <summary>Connects, completes the connection sequence and starts reading into the queue behind <see cref="Receive"/>.</summary>
        /// <exception cref="MovanException">The server refused the first message (<see cref="ErrorKind.Server"/>:
        /// <c>bad_token</c>, <c>token_expired</c>, <c>session_revoked</c>, <c>banned</c>, <c>too_many_connections</c>,
        /// ...), <see cref="ErrorKind.Crypto"/> (bad session key, unknown cipher, bad salt, encryption required but no
        /// key), <see cref="ErrorKind.Network"/>, <see cref="ErrorKind.Closed"/> or <see cref="ErrorKind.Timeout"/>.</exception>
        public static SyncConnection Connect(SyncConnectOptions options)
        {
            SyncConnection c = Open(options);
            c.Start(null);
            return c;
        }

        /// <summary>Connects and completes the connection sequence, without reading further: call <see cref="Start"/> next.</summary>
        /// <exception cref="MovanException">As for <see cref="Connect"/>.</exception>
        public static SyncConnection Open(SyncConnectOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            if (string.IsNullOrEmpty(options.Uid)) throw new ArgumentException("options.Uid is required");
            if (options.Token == null) throw new ArgumentException("options.Token is required");
            options = options.Copy();
            // A bad key fails before connecting.
            byte[] key = options.SessionKey == null ? null : SessionCrypto.DecodeKey(options.SessionKey, "session key");
            ISyncTransportFactory factory = options.Transport ?? TcpTransport.Factory;
            ISyncTransport transport = factory.Connect(options.Address, options.ConnectTimeout,
                options.MaxServerFrameBytes);
            var c = new SyncConnection(transport, options);
            try
            {
                c.RunSequence(key);
            }
            catch (Exception)
            {
                c.closed = true;
                transport.Close();
                throw;
            }
            return c;
        }

        /// <summary>The uid this connection speaks for.</summary>
        public string Uid { get { return options.Uid; } }

        /// <summary>The server address.</summary>
        public string Address { get { return options.Address; } }

        /// <summary>True when every frame is sealed (the server's handshake asked for it); false with <c>encryption = "off"</c>.</summary>
        public bool IsSealed { get { return sealer != null; } }

        /// <summary>False once the connection ended (or failed); sends then throw.</summary>
        public bool IsOpen { get { return !closed; } }

        /// <summary>True when a small <see cref="SendBody"/> would not block: the connection is open and its socket has room.</summary>
        public bool CanSendWithoutBlocking { get { return !closed && transport.CanSendWithoutBlocking; } }

        /// <summary>True when this client closed the connection (<see cref="Close"/>).</summary>
        public bool ClosedByClient { get { return closedByClient; } }

        /// <summary>Why the connection ended, when not a clean end of stream: a read error, a malformed message, a crypto failure.</summary>
        public MovanException CloseReason { get; private set; }

        /// <summary>The last <c>error</c> the server sent on this connection: usually why it closed (<c>replaced</c>, ...).</summary>
        public ServerError LastError { get; private set; }

        /// <summary>Starts the reader thread; it first delivers what arrived during the connection sequence.</summary>
        /// <param name="listener">Gets every message on the reader thread; null to queue them for <see cref="Receive"/>.</param>
        public void Start(IServerMessageListener listener)
        {
            if (Interlocked.Exchange(ref started, 1) != 0) throw new InvalidOperationException("already started");
            if (listener == null)
            {
                queue = new BoundedQueue<ServerMessage>(options.QueueCapacity);
                listener = new QueueListener(queue);
            }
            var thread = new Thread(() => ReadLoop(listener), 256 * 1024);
            thread.IsBackground = true;
            thread.Name = "movan-sync-reader";
            thread.Start();
        }

        // ---- sending ----

        /// <summary><c>room_enter</c>: joins <paramref name="roomId"/> (created when missing), or quick-matches when null.</summary>
        public void EnterRoom(string roomId)
        {
            Send("room_enter", ClientMessages.RoomEnterData(roomId), null, UnixTime.Now());
        }

        /// <summary><c>room_spectate</c>: watch <paramref name="roomId"/> without playing; the history comes as
        /// <see cref="ReloadChunk"/>s, then every frame, <c>sync.spectator_delay_frames</c> behind the players.</summary>
        public void Spectate(string roomId)
        {
            if (roomId == null) throw new ArgumentNullException("roomId");
            Send("room_spectate", ClientMessages.RoomEnterData(roomId), null, UnixTime.Now());
        }

        /// <summary><c>room_leave</c>.</summary>
        public void LeaveRoom()
        {
            Send("room_leave", null, null, UnixTime.Now());
        }

        /// <summary><c>room_prepare</c>: marks the player ready.</summary>
        public void Prepare()
        {
            Send("room_prepare", null, null, UnixTime.Now());
        }

        /// <summary><c>sync_action</c>: <paramref name="actionJson"/> (a JSON object) for the next frame, stamped now unless <paramref name="timestamp"/> is given.</summary>
        /// <exception cref="ArgumentException">Not a JSON object nested at most 32 deep.</exception>
        public void SendAction(string actionJson, double? timestamp = null)
        {
            Send("sync_action", null, ClientMessages.CheckAction(actionJson), timestamp ?? UnixTime.Now());
        }

        /// <summary><c>sync_action</c> with a built or parsed object.</summary>
        public void SendAction(JsonValue action, double? timestamp = null)
        {
            Send("sync_action", null, ClientMessages.ActionJson(action), timestamp ?? UnixTime.Now());
        }

        /// <summary><c>ping</c>, stamped now (echoed in the <c>pong</c>).</summary>
        public void Ping()
        {
            Send("ping", null, null, UnixTime.Now());
        }

        /// <summary><c>sync_checksum</c>: your hash of the game state after <paramref name="frame"/>, a multiple of
        /// <see cref="GameStart.ChecksumInterval"/>. Disagreeing hashes bring every member a <see cref="Desync"/>.</summary>
        /// <exception cref="ArgumentException">A hash of 0 or more than 64 bytes.</exception>
        public void SendChecksum(long frame, string hash)
        {
            Send("sync_checksum", ClientMessages.ChecksumData(frame, hash), null, UnixTime.Now());
        }

        /// <summary><c>sync_request_reload_frames</c> from <paramref name="startFrame"/>; the chunks arrive as <see cref="ReloadChunk"/>s.</summary>
        public void RequestReload(long startFrame)
        {
            Send(ClientMessages.ReloadProto, ClientMessages.ReloadData(startFrame), null, UnixTime.Now());
        }

        /// <summary>Any proto in the normal envelope; <paramref name="dataJson"/> and <paramref name="actionJson"/> are inserted verbatim.</summary>
        public void Send(string proto, string dataJson, string actionJson, double? timestamp)
        {
            SendBody(ClientMessages.Envelope(options.Uid, null, proto, timestamp, dataJson, actionJson));
        }

        /// <summary>Sends one plaintext body as a frame, sealed when the connection is encrypted.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Closed"/>, <see cref="ErrorKind.TooLarge"/> (nothing
        /// sent), <see cref="ErrorKind.Network"/> (the connection is then closed).</exception>
        public void SendBody(byte[] plaintext)
        {
            int wireLen = plaintext.Length + (sealer != null ? SessionCrypto.TagSize : 0);
            if (wireLen > options.MaxFrameBytes)
            {
                throw new MovanException(ErrorKind.TooLarge,
                    "a " + wireLen + "-byte message is above the server's " + options.MaxFrameBytes + "-byte limit");
            }
            lock (sendLock)
            {
                if (closed) throw new MovanException(ErrorKind.Closed, "the sync connection is closed");
                byte[] body = sealer != null ? sealer.SealBody(plaintext, 0, plaintext.Length) : plaintext;
                try
                {
                    transport.Send(body, 0, body.Length);
                }
                catch (MovanException)
                {
                    closed = true;
                    transport.Close();
                    throw;
                }
            }
        }

        /// <summary>
        /// UDP only: moves the session to a new local port, as after a network change, and sends a sealed
        /// <c>ping</c> from it; once that opens, the server replies to the new address (docs/protocol.md §2.2,
        /// "Address changes"). No reconnect, no reload. Returns the new local address.
        /// </summary>
        /// <exception cref="InvalidOperationException">Not a UDP connection.</exception>
        /// <exception cref="MovanException"><see cref="ErrorKind.Closed"/>, <see cref="ErrorKind.Network"/>.</exception>
        public System.Net.EndPoint Rebind()
        {
            System.Net.EndPoint local = RebindSocket();
            Ping();
            return local;
        }

        /// <summary><see cref="Rebind"/> without the ping.</summary>
        internal System.Net.EndPoint RebindSocket()
        {
            var udp = transport as UdpTransport;
            if (udp == null) throw new InvalidOperationException("Rebind needs a connection over UdpTransport");
            if (closed) throw new MovanException(ErrorKind.Closed, "the sync connection is closed");
            return udp.Rebind();
        }

        /// <summary>Closes the connection. The server keeps the player's seat for <c>sync.reconnect_grace_secs</c>; send <see cref="LeaveRoom"/> first to give it up at once.</summary>
        public void Close()
        {
            closedByClient = true;
            closed = true;
            transport.Close();
            // Unblocks a reader waiting for room in a queue nobody drains any more.
            if (queue != null) queue.Close();
        }

        /// <summary>Same as <see cref="Close"/>.</summary>
        public void Dispose()
        {
            Close();
        }

        // ---- receiving (when started without a listener) ----

        /// <summary>
        /// The next server message, waiting up to <paramref name="timeout"/>; null once the connection has ended and
        /// everything was read (then see <see cref="CloseReason"/>).
        /// </summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Timeout"/>: nothing arrived in time.</exception>
        public ServerMessage Receive(TimeSpan timeout)
        {
            CheckQueue();
            if (pending.Count > 0)
            {
                ServerMessage first = pending[0];
                pending.RemoveAt(0);
                return first;
            }
            ServerMessage m;
            if (queue.Take(out m, ToMs(timeout))) return m;
            if (queue.IsClosed) return null;
            throw new MovanException(ErrorKind.Timeout, "no server message within " + timeout);
        }

        /// <summary>The next server message if one is waiting.</summary>
        public bool TryReceive(out ServerMessage message)
        {
            CheckQueue();
            if (pending.Count > 0)
            {
                message = pending[0];
                pending.RemoveAt(0);
                return true;
            }
            return queue.TryTake(out message);
        }

        /// <summary>The first message matching <paramref name="match"/> within <paramref name="timeout"/>, discarding the others.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Timeout"/>, or <see cref="ErrorKind.Closed"/> when the connection ends first.</exception>
        public ServerMessage WaitFor(Predicate<ServerMessage> match, TimeSpan timeout)
        {
            DateTime deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                ServerMessage m = Receive(left < TimeSpan.Zero ? TimeSpan.Zero : left);
                if (m == null) throw new MovanException(ErrorKind.Closed, "the connection closed first", CloseReason);
                if (match(m)) return m;
            }
        }

        /// <summary>
        /// Requests frames from <paramref name="startFrame"/> and collects every <c>reload_frames</c> chunk until the
        /// last. Other messages arriving meanwhile (live frames, <c>room_state</c>) stay queued, in order.
        /// </summary>
        /// <exception cref="MovanException">The server's <c>error</c> about the reload (<c>history_expired</c>,
        /// <c>not_in_room</c>, ...), <see cref="ErrorKind.Protocol"/> for chunks out of order,
        /// <see cref="ErrorKind.Timeout"/> or <see cref="ErrorKind.Closed"/>.</exception>
        public List<Frame> Reload(long startFrame, TimeSpan timeout)
        {
            CheckQueue();
            RequestReload(startFrame);
            DateTime deadline = DateTime.UtcNow + timeout;
            var frames = new List<Frame>();
            long next = startFrame;
            var later = new List<ServerMessage>();
            try
            {
                while (true)
                {
                    TimeSpan left = deadline - DateTime.UtcNow;
                    ServerMessage m;
                    if (!queue.Take(out m, ToMs(left < TimeSpan.Zero ? TimeSpan.Zero : left)))
                    {
                        if (queue.IsClosed) throw new MovanException(ErrorKind.Closed, "the connection closed during a reload", CloseReason);
                        throw new MovanException(ErrorKind.Timeout, "the reload from frame " + startFrame + " did not finish in time");
                    }
                    var chunk = m as ReloadChunk;
                    var err = m as ServerError;
                    if (chunk != null)
                    {
                        if (chunk.StartFrame != next) throw OutOfOrder("chunk starts at frame " + chunk.StartFrame + ", expected " + next);
                        foreach (Frame f in chunk.Frames)
                        {
                            if (f.FrameCount != next) throw OutOfOrder("chunk holds frame " + f.FrameCount + ", expected " + next);
                            frames.Add(f);
                            next++;
                        }
                        if (chunk.Last)
                        {
                            if (next != chunk.EndFrame) throw OutOfOrder("ended at frame " + next + ", but end_frame is " + chunk.EndFrame);
                            return frames;
                        }
                    }
                    else if (err != null && (err.ErrorProto == null || err.ErrorProto == ClientMessages.ReloadProto))
                    {
                        throw MovanException.FromServer(err);
                    }
                    else
                    {
                        later.Add(m);
                    }
                }
            }
            finally
            {
                pending.AddRange(later);
            }
        }

        private static MovanException OutOfOrder(string what)
        {
            return new MovanException(ErrorKind.Protocol, "reload out of order: " + what);
        }

        private void CheckQueue()
        {
            if (queue == null)
            {
                throw new InvalidOperationException("Receive needs a connection from Connect() (or Start(null))");
            }
        }

        private static int ToMs(TimeSpan t)
        {
            double ms = Math.Ceiling(t.TotalMilliseconds);
            if (ms <= 0) return 0;
            return ms > int.MaxValue ? int.MaxValue : (int)ms;
        }

        // ---- the connection sequence and the reader ----

        private void RunSequence(byte[] key)
        {
            DateTime deadline = DateTime.UtcNow + options.HandshakeTimeout;
            // The first message is plaintext and carries the token.
            byte[] first = ClientMessages.Envelope(options.Uid, options.Token, "ping", UnixTime.Now(), null, null);
            transport.Send(first, 0, first.Length);
            byte[] body = ReceiveBefore(deadline, false);
            ServerMessage m = ServerMessageParser.ParseFirst(body);
            var refused = m as ServerError;
            if (refused != null)
            {
                LastError = refused;
                throw MovanException.FromServer(refused);
            }
            var hs = (Handshake)m;
            int pongs = 1;
            if (hs.Sealed)
            {
                if (key == null)
                {
                    throw new MovanException(ErrorKind.Crypto, "the server requires encryption but no session key was given");
                }
                FrameSealer s;
                FrameOpener o;
                SessionCrypto.ClientSide(key, hs.Salt, options.Aead, out s, out o);
                sealer = s;
                opener = o;
                // The server runs the first request only once a sealed frame proves that we hold the session key.
                Ping();
                pongs = 2;
            }
            while (pongs > 0)
            {
                m = Decode(ReceiveBefore(deadline, sealer != null && pongs == 2));
                if (m is Pong)
                {
                    pongs--;
                    continue;
                }
                var err = m as ServerError;
                if (err != null)
                {
                    LastError = err;
                    throw MovanException.FromServer(err);
                }
                if (!(m is UnknownMessage)) held.Add(m);
            }
            transport.ReceiveTimeoutMs = 0;
        }

        private byte[] ReceiveBefore(DateTime deadline, bool proving)
        {
            int left = ToMs(deadline - DateTime.UtcNow);
            if (left <= 0) throw HandshakeTimeout();
            transport.ReceiveTimeoutMs = left;
            byte[] body;
            try
            {
                body = transport.Receive();
            }
            catch (MovanException e)
            {
                if (e.Kind == ErrorKind.Timeout) throw HandshakeTimeout();
                throw;
            }
            if (body == null)
            {
                throw new MovanException(ErrorKind.Closed, proving
                    ? "the sync server closed the connection after the first sealed frame: wrong session key?"
                    : "the sync server closed the connection during the handshake");
            }
            return body;
        }

        private static MovanException HandshakeTimeout()
        {
            return new MovanException(ErrorKind.Timeout, "the sync server did not complete the handshake in time");
        }

        /// <summary>Opens (when sealed) and parses one body.</summary>
        private ServerMessage Decode(byte[] body)
        {
            byte[] plain = opener != null ? opener.OpenBody(body, 0, body.Length) : body;
            ServerMessage m = ServerMessageParser.Parse(plain);
            var pong = m as Pong;
            if (pong != null) pong.ReceivedAt = UnixTime.Now();
            return m;
        }

        private void ReadLoop(IServerMessageListener listener)
        {
            MovanException reason = null;
            try
            {
                foreach (ServerMessage m in held) Deliver(listener, m);
                held.Clear();
                while (true)
                {
                    byte[] body = transport.Receive();
                    if (body == null) break;
                    ServerMessage m = Decode(body);
                    if (m is UnknownMessage) continue; // A newer server may know more messages.
                    Deliver(listener, m);
                }
            }
            catch (MovanException e)
            {
                if (!closedByClient) reason = e;
            }
            catch (Exception e)
            {
                // A listener failure: report it rather than lose the thread silently.
                reason = new MovanException(ErrorKind.Protocol, "the connection's listener failed: " + e.Message, e);
            }
            closed = true;
            transport.Close();
            CloseReason = reason;
            listener.OnClosed(this, reason);
        }

        private void Deliver(IServerMessageListener listener, ServerMessage m)
        {
            var err = m as ServerError;
            if (err != null) LastError = err;
            listener.OnMessage(this, m);
        }

        private sealed class QueueListener : IServerMessageListener
        {
            private readonly BoundedQueue<ServerMessage> queue;

            public QueueListener(BoundedQueue<ServerMessage> queue)
            {
                this.queue = queue;
            }

            public void OnMessage(SyncConnection connection, ServerMessage message)
            {
                queue.Add(message, false);
            }

            public void OnClosed(SyncConnection connection, MovanException reason)
            {
                queue.Close();
            }
        }
    }
}
