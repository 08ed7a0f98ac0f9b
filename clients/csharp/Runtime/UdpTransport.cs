using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;

namespace Movan.Client
{
    /// <summary>How a <see cref="UdpTransport"/> sets up and keeps its session (docs/protocol.md §2.2).</summary>
    public sealed class UdpTransportOptions
    {
        /// <summary>KCP's settings; the defaults are the server's.</summary>
        public KcpTuning Kcp = new KcpTuning();
        /// <summary>Resend <c>hello</c> or <c>connect</c> after this long without an answer.</summary>
        public TimeSpan SetupRetry = TimeSpan.FromMilliseconds(250);
        /// <summary>Give the set-up up after this many <c>hello</c>s (or <c>connect</c>s) unanswered; the connect timeout ends it too.</summary>
        public int SetupAttempts = 20;
        /// <summary>With nothing sent for this long, send a KCP window probe: the server answers it, so the session (and NATs on the way) stay alive.</summary>
        public TimeSpan Keepalive = TimeSpan.FromSeconds(5);
        /// <summary>No datagram from the server for this long (three keepalives unanswered) ends the session.</summary>
        public TimeSpan SilenceTimeout = TimeSpan.FromSeconds(15);

        internal UdpTransportOptions Copy()
        {
            var c = (UdpTransportOptions)MemberwiseClone();
            c.Kcp = Kcp.Copy();
            return c;
        }
    }

    /// <summary>
    /// UDP with Movan's cookie set-up and KCP (docs/protocol.md §2.2): one body is one KCP message, so sealing and
    /// everything above it are as over TCP. Connect to the login's <c>sync_udp_addr</c>.
    /// </summary>
    /// <remarks>
    /// <para>The thread that calls <see cref="Receive"/> reads the socket, feeds KCP and acknowledges at once. One
    /// background thread per process runs the timers of every live UDP transport (resends every 10 ms while a
    /// segment waits, keepalives, the silence timeout), so a session adds no thread of its own. It stops when the
    /// last transport closes.</para>
    /// <para>The session ends with <see cref="ErrorKind.Network"/> on KCP's dead link (a segment sent
    /// <see cref="KcpTuning.DeadLink"/> times, about 5 s) or after <see cref="UdpTransportOptions.SilenceTimeout"/>
    /// without a datagram; the server never announces an end. ICMP errors are ignored: KCP decides.</para>
    /// </remarks>
    public sealed class UdpTransport : ISyncTransport
    {
        /// <summary>A factory with the default options.</summary>
        public static readonly ISyncTransportFactory Factory = new UdpFactory(new UdpTransportOptions());

        private static readonly Stopwatch Clock = Stopwatch.StartNew();

        private readonly object gate = new object();
        private readonly UdpSession session;
        private readonly IPEndPoint server;
        private readonly byte[] readBuf;
        private volatile Socket socket;
        private volatile bool closed;
        private int receiveTimeoutMs;
        private int socketTimeoutMs;
        /// <summary>When the timer thread must next run this session (ms on <see cref="Clock"/>).</summary>
        private long due;

        private UdpTransport(Socket socket, IPEndPoint server, UdpSession session, int mtu)
        {
            this.socket = socket;
            this.server = server;
            this.session = session;
            readBuf = new byte[Math.Max(mtu, 1500) + 1];
        }

        /// <summary>A factory with <paramref name="options"/> (copied).</summary>
        public static ISyncTransportFactory FactoryWith(UdpTransportOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            return new UdpFactory(options.Copy());
        }

        /// <summary>Opens a session with the server at <c>host:port</c>: the cookie exchange, then KCP with the conv it picked.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Timeout"/> (no answer), <see cref="ErrorKind.Network"/> (refused, nothing listening, no route).</exception>
        public static UdpTransport Connect(string address, TimeSpan timeout, UdpTransportOptions options)
        {
            string host;
            int port;
            TcpTransport.SplitAddress(address, out host, out port);
            options = options.Copy();
            long deadline = Now() + (long)timeout.TotalMilliseconds;
            IPAddress[] addrs;
            try
            {
                IPAddress literal;
                addrs = IPAddress.TryParse(host, out literal) ? new[] { literal } : Dns.GetHostAddresses(host);
            }
            catch (SocketException e)
            {
                throw new MovanException(ErrorKind.Network, "cannot resolve " + host + ": " + e.Message, e);
            }
            MovanException last = null;
            foreach (IPAddress ip in addrs)
            {
                if (Now() >= deadline) break;
                try
                {
                    return SetUp(new IPEndPoint(ip, port), deadline, options);
                }
                catch (MovanException e)
                {
                    last = e;
                    if (e.Kind != ErrorKind.Network) break;
                }
            }
            throw last ?? new MovanException(ErrorKind.Timeout, "the UDP session set-up with " + address + " timed out");
        }

        private static UdpTransport SetUp(IPEndPoint server, long deadline, UdpTransportOptions options)
        {
            Socket s = Bind(server);
            var nonce = new byte[8];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(nonce);
            var session = new UdpSession(options, nonce, Now());
            var t = new UdpTransport(s, server, session, options.Kcp.Mtu);
            try
            {
                while (!session.IsOpen)
                {
                    t.Transmit();
                    if (session.Error != null) throw session.Error;
                    long now = Now();
                    if (now >= deadline) throw new MovanException(ErrorKind.Timeout, "the UDP session set-up with " + server + " timed out");
                    long wait = Math.Max(1, Math.Min(session.NextTimeout(now), deadline) - now);
                    bool readable;
                    try
                    {
                        readable = s.Poll((int)Math.Min(wait * 1000, int.MaxValue), SelectMode.SelectRead);
                        if (readable)
                        {
                            int n = s.Receive(t.readBuf);
                            session.HandleDatagram(t.readBuf, n, Now());
                        }
                    }
                    catch (SocketException e)
                    {
                        // Linux reports an ICMP port unreachable on the next read of a connected socket.
                        throw new MovanException(ErrorKind.Network, "no UDP session at " + server + ": " + e.Message, e);
                    }
                    session.HandleTimeout(Now());
                }
                t.Transmit();
            }
            catch (Exception)
            {
                s.Close();
                throw;
            }
            t.due = session.NextTimeout(Now());
            TimerThread.Add(t);
            return t;
        }

        private static Socket Bind(IPEndPoint server)
        {
            var s = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                s.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
                // Connected: the kernel drops datagrams from anyone but the server.
                s.Connect(server);
                return s;
            }
            catch (SocketException e)
            {
                s.Close();
                throw new MovanException(ErrorKind.Network, "cannot open a UDP socket to " + server + ": " + e.Message, e);
            }
        }

        /// <summary>The session's KCP <c>conv</c>, as the server picked it.</summary>
        public uint Conv { get { return session.Conv; } }

        /// <summary>The local address datagrams leave from.</summary>
        public EndPoint LocalEndPoint { get { return socket.LocalEndPoint; } }

        /// <inheritdoc />
        public int ReceiveTimeoutMs
        {
            set { Volatile.Write(ref receiveTimeoutMs, value); }
        }

        /// <inheritdoc />
        public bool CanSendWithoutBlocking
        {
            get
            {
                lock (gate) return !closed && session.Error == null;
            }
        }

        /// <inheritdoc />
        public void Send(byte[] body, int offset, int count)
        {
            lock (gate)
            {
                if (closed) throw new MovanException(ErrorKind.Closed, "the connection is closed");
                session.Send(body, offset, count, Now());
                Transmit();
                Schedule();
            }
        }

        /// <inheritdoc />
        public byte[] Receive()
        {
            int timeout = Volatile.Read(ref receiveTimeoutMs);
            long deadline = timeout > 0 ? Now() + timeout : long.MaxValue;
            while (true)
            {
                lock (gate)
                {
                    byte[] m = session.NextMessage();
                    if (m != null) return m;
                    if (closed) return null;
                    if (session.Error != null) throw session.Error;
                }
                Socket s = socket;
                int n;
                try
                {
                    int wait = 0;
                    if (deadline != long.MaxValue)
                    {
                        long left = deadline - Now();
                        if (left <= 0) throw new MovanException(ErrorKind.Timeout, "no data from the sync server in time");
                        wait = (int)Math.Min(left, int.MaxValue);
                    }
                    if (wait != socketTimeoutMs)
                    {
                        s.ReceiveTimeout = wait;
                        socketTimeoutMs = wait;
                    }
                    n = s.Receive(readBuf, 0, readBuf.Length, SocketFlags.None);
                }
                catch (SocketException e)
                {
                    if (closed || session.Error != null || s != socket) continue;
                    if (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock) continue;
                    // ICMP errors, and a datagram longer than the MTU (the server sends none): KCP decides.
                    if (e.SocketErrorCode == SocketError.ConnectionRefused || e.SocketErrorCode == SocketError.ConnectionReset ||
                        e.SocketErrorCode == SocketError.MessageSize) continue;
                    throw new MovanException(ErrorKind.Network, "reading from the sync server failed: " + e.Message, e);
                }
                catch (ObjectDisposedException e)
                {
                    if (closed || session.Error != null || s != socket) continue;
                    throw new MovanException(ErrorKind.Network, "the UDP socket closed", e);
                }
                lock (gate)
                {
                    if (s != socket) continue;
                    session.HandleDatagram(readBuf, n, Now());
                    Transmit();
                    Schedule();
                }
            }
        }

        /// <summary>
        /// Moves the session to a new local socket (a new port), as a phone that changes networks does. The server
        /// keeps replying to the old address until a sealed message from the new one opens: send one (a
        /// <c>ping</c>) next, as <see cref="SyncConnection.Rebind"/> does.
        /// </summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Network"/>: no new socket; the old one stays.</exception>
        public EndPoint Rebind()
        {
            Socket fresh = Bind(server);
            Socket old;
            lock (gate)
            {
                if (closed)
                {
                    fresh.Close();
                    throw new MovanException(ErrorKind.Closed, "the connection is closed");
                }
                old = socket;
                socket = fresh;
                socketTimeoutMs = -1;
            }
            // Wakes a reader blocked on the old socket; it goes on with the new one.
            old.Close();
            return fresh.LocalEndPoint;
        }

        /// <inheritdoc />
        public void Close()
        {
            Socket s;
            lock (gate)
            {
                if (closed) return;
                closed = true;
                s = socket;
            }
            TimerThread.Remove(this);
            s.Close();
        }

        /// <inheritdoc />
        public void Dispose()
        {
            Close();
        }

        private static long Now()
        {
            return Clock.ElapsedMilliseconds;
        }

        /// <summary>Sends what the session queued. Under <see cref="gate"/> (or before the transport is shared).</summary>
        private void Transmit()
        {
            Socket s = socket;
            byte[] d;
            while ((d = session.NextDatagram()) != null)
            {
                try
                {
                    s.Send(d, 0, d.Length, SocketFlags.None);
                }
                catch (SocketException)
                {
                    // A lost datagram is KCP's business (an ICMP error surfaces here too).
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        }

        /// <summary>Under <see cref="gate"/>.</summary>
        private void Schedule()
        {
            Volatile.Write(ref due, session.NextTimeout(Now()));
        }

        /// <summary>Runs the session's timers if due; false once the transport is closed or failed.</summary>
        private bool OnTimer(long now)
        {
            if (now < Volatile.Read(ref due)) return true;
            Socket failed = null;
            lock (gate)
            {
                if (closed) return false;
                session.HandleTimeout(now);
                Transmit();
                Schedule();
                if (session.Error != null) failed = socket;
            }
            if (failed == null) return true;
            // Wakes the reader, which reports the session's error.
            failed.Close();
            return false;
        }

        /// <summary>The process's one timer thread for the live UDP transports: a 10 ms tick, stopped when none is left.</summary>
        private static class TimerThread
        {
            private static readonly object Lock = new object();
            private static readonly List<UdpTransport> Live = new List<UdpTransport>();
            private static bool running;

            public static void Add(UdpTransport t)
            {
                lock (Lock)
                {
                    Live.Add(t);
                    if (running) return;
                    running = true;
                }
                var thread = new Thread(Run, 128 * 1024);
                thread.IsBackground = true;
                thread.Name = "movan-udp-timers";
                thread.Start();
            }

            public static void Remove(UdpTransport t)
            {
                lock (Lock) Live.Remove(t);
            }

            private static void Run()
            {
                var batch = new List<UdpTransport>();
                while (true)
                {
                    Thread.Sleep(10);
                    batch.Clear();
                    lock (Lock)
                    {
                        if (Live.Count == 0)
                        {
                            running = false;
                            return;
                        }
                        batch.AddRange(Live);
                    }
                    long now = Now();
                    foreach (UdpTransport t in batch)
                    {
                        bool alive;
                        try
                        {
                            alive = t.OnTimer(now);
                        }
                        catch (Exception)
                        {
                            alive = false;
                        }
                        if (!alive) Remove(t);
                    }
                }
            }
        }

        private sealed class UdpFactory : ISyncTransportFactory
        {
            private readonly UdpTransportOptions options;

            public UdpFactory(UdpTransportOptions options)
            {
                this.options = options;
            }

            public ISyncTransport Connect(string address, TimeSpan timeout, int maxBodyBytes)
            {
                return UdpTransport.Connect(address, timeout, options);
            }
        }

        /// <summary>True for the factories of this class: a session then connects to the login's <c>sync_udp_addr</c>.</summary>
        internal static bool IsUdp(ISyncTransportFactory factory)
        {
            return factory is UdpFactory;
        }
    }
}
