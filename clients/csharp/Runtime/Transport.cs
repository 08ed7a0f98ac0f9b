using System;
using System.IO;
using System.Net;
using System.Net.Sockets;

namespace Movan.Client
{
    /// <summary>
    /// A reliable, ordered transport of frame bodies to one sync server. <see cref="SyncConnection"/> speaks the
    /// protocol (token, handshake, sealing) over any of them: <see cref="TcpTransport"/> today, UDP/KCP later.
    /// </summary>
    /// <remarks>
    /// A transport moves bodies only: on TCP each body gets its 4-byte length prefix; a message transport
    /// (WebSocket, KCP) would send one body per message. Sealing is the same on every transport, because the
    /// associated data is the body's length, not the prefix bytes on the wire.
    /// </remarks>
    public interface ISyncTransport : IDisposable
    {
        /// <summary>Sends one body. Called by one thread at a time. Throws <see cref="MovanException"/> (<see cref="ErrorKind.Network"/>) on failure.</summary>
        void Send(byte[] body, int offset, int count);

        /// <summary>
        /// Blocks until the next whole body arrives and returns it; null at a clean end of stream. Called by one
        /// thread at a time. Throws <see cref="MovanException"/>: <see cref="ErrorKind.Timeout"/> after
        /// <see cref="ReceiveTimeoutMs"/>, <see cref="ErrorKind.Protocol"/> for a body above the limit,
        /// <see cref="ErrorKind.Network"/> otherwise.
        /// </summary>
        byte[] Receive();

        /// <summary>How long <see cref="Receive"/> may block, in milliseconds; 0 = no limit.</summary>
        int ReceiveTimeoutMs { set; }

        /// <summary>True when a small <see cref="Send"/> would return without waiting for the network (room in the send buffer).</summary>
        bool CanSendWithoutBlocking { get; }

        /// <summary>Closes both directions; a blocked <see cref="Receive"/> returns or throws soon after.</summary>
        void Close();
    }

    /// <summary>Opens <see cref="ISyncTransport"/>s; <see cref="GameSession"/> asks it again on every reconnect.</summary>
    public interface ISyncTransportFactory
    {
        /// <summary>Connects to <paramref name="address"/> (<c>host:port</c>), giving up after <paramref name="timeout"/>.</summary>
        ISyncTransport Connect(string address, TimeSpan timeout, int maxBodyBytes);
    }

    /// <summary>TCP with the 4-byte big-endian length prefix (docs/protocol.md §2), <c>TCP_NODELAY</c> on.</summary>
    public sealed class TcpTransport : ISyncTransport
    {
        /// <summary>The default factory.</summary>
        public static readonly ISyncTransportFactory Factory = new TcpFactory();

        private readonly Socket socket;
        private readonly FrameDecoder decoder;
        private readonly byte[] readBuf = new byte[65536];
        private byte[] writeBuf = new byte[1024];
        private volatile bool closed;

        private TcpTransport(Socket socket, int maxBodyBytes)
        {
            this.socket = socket;
            decoder = new FrameDecoder(maxBodyBytes);
        }

        /// <summary>Connects to <c>host:port</c> (IPv6 literals in brackets), trying each address the name resolves to.</summary>
        public static TcpTransport Connect(string address, TimeSpan timeout, int maxBodyBytes)
        {
            string host;
            int port;
            SplitAddress(address, out host, out port);
            DateTime deadline = DateTime.UtcNow + timeout;
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
            Exception last = null;
            foreach (IPAddress ip in addrs)
            {
                var s = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    TimeSpan left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) break;
                    IAsyncResult ar = s.BeginConnect(ip, port, null, null);
                    if (!ar.AsyncWaitHandle.WaitOne(left))
                    {
                        s.Close();
                        throw new MovanException(ErrorKind.Timeout, "connecting to " + address + " timed out");
                    }
                    s.EndConnect(ar);
                    s.NoDelay = true;
                    s.SendTimeout = 30000;
                    return new TcpTransport(s, maxBodyBytes);
                }
                catch (SocketException e)
                {
                    s.Close();
                    last = e;
                }
                catch (ObjectDisposedException e)
                {
                    last = e;
                }
            }
            throw new MovanException(ErrorKind.Network,
                "cannot connect to " + address + (last != null ? ": " + last.Message : ""), last);
        }

        /// <summary>Splits <c>host:port</c> or <c>[v6]:port</c>.</summary>
        /// <exception cref="ArgumentException">No port, or not a number from 1 to 65535.</exception>
        public static void SplitAddress(string address, out string host, out int port)
        {
            if (address == null) throw new ArgumentNullException("address");
            int colon = address.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(address.Substring(colon + 1), out port) || port < 1 || port > 65535)
            {
                throw new ArgumentException("expected host:port, got \"" + address + "\"", "address");
            }
            host = address.Substring(0, colon);
            if (host.StartsWith("[") && host.EndsWith("]")) host = host.Substring(1, host.Length - 2);
        }

        /// <inheritdoc />
        public int ReceiveTimeoutMs
        {
            set { socket.ReceiveTimeout = value; }
        }

        /// <inheritdoc />
        public bool CanSendWithoutBlocking
        {
            get
            {
                try
                {
                    return !closed && socket.Poll(0, SelectMode.SelectWrite);
                }
                catch (SocketException)
                {
                    return false;
                }
                catch (ObjectDisposedException)
                {
                    return false;
                }
            }
        }

        /// <inheritdoc />
        public void Send(byte[] body, int offset, int count)
        {
            int total = 4 + count;
            if (writeBuf.Length < total) writeBuf = new byte[Math.Max(total, writeBuf.Length * 2)];
            writeBuf[0] = (byte)(count >> 24);
            writeBuf[1] = (byte)(count >> 16);
            writeBuf[2] = (byte)(count >> 8);
            writeBuf[3] = (byte)count;
            Buffer.BlockCopy(body, offset, writeBuf, 4, count);
            try
            {
                int sent = 0;
                while (sent < total) sent += socket.Send(writeBuf, sent, total - sent, SocketFlags.None);
            }
            catch (SocketException e)
            {
                throw new MovanException(ErrorKind.Network, "sending to the sync server failed: " + e.Message, e);
            }
            catch (ObjectDisposedException e)
            {
                throw new MovanException(ErrorKind.Closed, "the connection is closed", e);
            }
            if (writeBuf.Length > 65536) writeBuf = new byte[1024];
        }

        /// <inheritdoc />
        public byte[] Receive()
        {
            byte[] body;
            while (!decoder.TryNext(out body))
            {
                int n;
                try
                {
                    n = socket.Receive(readBuf, 0, readBuf.Length, SocketFlags.None);
                }
                catch (SocketException e)
                {
                    if (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
                    {
                        throw new MovanException(ErrorKind.Timeout, "no data from the sync server in time", e);
                    }
                    if (closed) return null;
                    throw new MovanException(ErrorKind.Network, "reading from the sync server failed: " + e.Message, e);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (IOException e)
                {
                    if (closed) return null;
                    throw new MovanException(ErrorKind.Network, "reading from the sync server failed: " + e.Message, e);
                }
                if (n == 0)
                {
                    if (decoder.Buffered > 0 && !closed)
                    {
                        throw new MovanException(ErrorKind.Network,
                            "the sync server closed the connection in the middle of a frame");
                    }
                    return null;
                }
                decoder.Push(readBuf, 0, n);
            }
            return body;
        }

        /// <inheritdoc />
        public void Close()
        {
            if (closed) return;
            closed = true;
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Not connected any more.
            }
            catch (ObjectDisposedException)
            {
            }
            socket.Close();
        }

        /// <inheritdoc />
        public void Dispose()
        {
            Close();
        }

        private sealed class TcpFactory : ISyncTransportFactory
        {
            public ISyncTransport Connect(string address, TimeSpan timeout, int maxBodyBytes)
            {
                return TcpTransport.Connect(address, timeout, maxBodyBytes);
            }
        }
    }
}
