using System;
using System.Collections.Generic;

namespace Movan.Client
{
    /// <summary>
    /// The set-up datagrams of docs/protocol.md §2.2 ("a stateless cookie"): <c>conv</c> 0, a kind, version 1 and
    /// the client's nonce; the server's cookie (slot and MAC) is opaque here and echoed as it came.
    /// </summary>
    internal static class UdpControl
    {
        public const byte Hello = 1;
        public const byte Cookie = 2;
        public const byte Connect = 3;
        public const byte Accept = 4;
        public const byte Refused = 5;
        public const byte Version = 1;
        /// <summary><c>hello</c> and <c>connect</c> are padded with zeros to this length (the server ignores shorter ones).</summary>
        public const int RequestLength = 64;
        public const int CookieLength = 34;
        public const int AcceptLength = 18;
        public const int RefusedLength = 15;
        public const byte RefusedBusy = 1;
        public const byte RefusedBadCookie = 2;

        /// <summary><c>hello</c>: 64 bytes, <c>00000000 01 01 nonce[8]</c> then zeros.</summary>
        public static byte[] EncodeHello(byte[] nonce)
        {
            var d = new byte[RequestLength];
            d[4] = Hello;
            d[5] = Version;
            Buffer.BlockCopy(nonce, 0, d, 6, 8);
            return d;
        }

        /// <summary><c>connect</c>: 64 bytes, <c>00000000 03 01 nonce[8]</c>, the cookie's 20 bytes (slot, mac) as received, zeros.</summary>
        public static byte[] EncodeConnect(byte[] nonce, byte[] cookie)
        {
            var d = new byte[RequestLength];
            d[4] = Connect;
            d[5] = Version;
            Buffer.BlockCopy(nonce, 0, d, 6, 8);
            Buffer.BlockCopy(cookie, 0, d, 14, 20);
            return d;
        }

        /// <summary>The kind of a control datagram from the server answering <paramref name="nonce"/>, or 0 when it is not one (short, another version or nonce).</summary>
        public static byte KindOf(byte[] d, int count, byte[] nonce)
        {
            if (count < 14 || Kcp.Get32(d, 0) != 0 || d[5] != Version) return 0;
            for (int i = 0; i < 8; i++)
            {
                if (d[6 + i] != nonce[i]) return 0;
            }
            byte kind = d[4];
            int need = kind == Cookie ? CookieLength : kind == Accept ? AcceptLength : kind == Refused ? RefusedLength : int.MaxValue;
            return count >= need ? kind : (byte)0;
        }
    }

    /// <summary>
    /// The client side of one UDP session, with no IO: the cookie exchange, then KCP with the server's tuning, the
    /// keepalive and the silence timeout. It takes datagrams and the time (milliseconds on one clock) and queues the
    /// datagrams to send and the messages that arrived; <see cref="UdpTransport"/> drives it over a socket.
    /// </summary>
    internal sealed class UdpSession
    {
        private readonly UdpTransportOptions options;
        private readonly byte[] nonce;
        private readonly Queue<byte[]> transmits = new Queue<byte[]>();
        private readonly Queue<byte[]> messages = new Queue<byte[]>();
        private readonly List<byte[]> queued = new List<byte[]>();
        private readonly long epoch;
        private Phase phase = Phase.Hello;
        private byte[] cookie;
        private int requests;
        private long requestAt;
        private long lastSent;
        private long lastHeard;
        private Kcp kcp;

        private enum Phase
        {
            Hello,
            Connect,
            Open,
            Failed,
        }

        /// <summary>Starts the set-up at <paramref name="now"/>: the first <c>hello</c> is ready in <see cref="NextDatagram"/>.</summary>
        public UdpSession(UdpTransportOptions options, byte[] nonce, long now)
        {
            this.options = options;
            this.nonce = (byte[])nonce.Clone();
            epoch = now;
            lastHeard = now;
            lastSent = now;
            Request(now);
        }

        /// <summary>The session's <c>conv</c> once the server accepted it, else 0.</summary>
        public uint Conv { get { return kcp != null ? kcp.Conv : 0; } }

        /// <summary>True once accepted.</summary>
        public bool IsOpen { get { return phase == Phase.Open; } }

        /// <summary>Why the session failed (no answer, refused, dead link, silence), or null.</summary>
        public MovanException Error { get; private set; }

        /// <summary>Segments not acknowledged yet.</summary>
        public int WaitingToSend { get { return kcp != null ? kcp.WaitingToSend : queued.Count; } }

        /// <summary>Takes a datagram from the server.</summary>
        public void HandleDatagram(byte[] d, int count, long now)
        {
            if (count < 4 || phase == Phase.Failed) return;
            uint conv = Kcp.Get32(d, 0);
            if (conv == 0)
            {
                HandleControl(d, count, now);
                return;
            }
            if (kcp == null || conv != kcp.Conv || kcp.Input(d, 0, count, Ms(now)) != 0) return;
            lastHeard = now;
            byte[] m;
            while ((m = kcp.Receive()) != null) messages.Enqueue(m);
            // Acknowledge at once: the server's retransmission timer runs on our acknowledgements.
            Flush(now);
        }

        /// <summary>Queues one message body (sealed or not): one KCP message. Before the accept it waits for it.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.TooLarge"/> above <see cref="KcpTuning.MaxMessage"/>, or the session's error.</exception>
        public void Send(byte[] body, int offset, int count, long now)
        {
            if (Error != null) throw Error;
            if (count > options.Kcp.MaxMessage)
            {
                throw new MovanException(ErrorKind.TooLarge,
                    "a " + count + "-byte message is above the " + options.Kcp.MaxMessage + " bytes of one KCP message");
            }
            if (kcp == null)
            {
                var copy = new byte[count];
                Buffer.BlockCopy(body, offset, copy, 0, count);
                queued.Add(copy);
                return;
            }
            kcp.Send(body, offset, count);
            Flush(now);
        }

        /// <summary>Runs the set-up's resends, KCP's timers, the keepalive and the silence timeout due at <paramref name="now"/>.</summary>
        public void HandleTimeout(long now)
        {
            switch (phase)
            {
                case Phase.Hello:
                case Phase.Connect:
                    if (now - requestAt >= options.SetupRetry.TotalMilliseconds) Request(now);
                    break;
                case Phase.Open:
                    if (now - lastHeard >= options.SilenceTimeout.TotalMilliseconds)
                    {
                        Fail(new MovanException(ErrorKind.Network, "no datagram from the sync server for " +
                            options.SilenceTimeout.TotalSeconds + " s: the UDP path is gone"));
                        return;
                    }
                    if (now - lastSent >= options.Keepalive.TotalMilliseconds) kcp.AskWindow();
                    Flush(now);
                    break;
            }
        }

        /// <summary>When <see cref="HandleTimeout"/> must run next; <see cref="long.MaxValue"/> after a failure.</summary>
        public long NextTimeout(long now)
        {
            switch (phase)
            {
                case Phase.Hello:
                case Phase.Connect:
                    return requestAt + (long)options.SetupRetry.TotalMilliseconds;
                case Phase.Open:
                    long next = Math.Min(lastSent + (long)options.Keepalive.TotalMilliseconds,
                        lastHeard + (long)options.SilenceTimeout.TotalMilliseconds);
                    if (kcp.WaitingToSend > 0)
                    {
                        uint ms = Ms(now);
                        next = Math.Min(next, now + Math.Max(1, (int)(kcp.NextUpdate(ms) - ms)));
                    }
                    return next;
                default:
                    return long.MaxValue;
            }
        }

        /// <summary>The next datagram to send, or null.</summary>
        public byte[] NextDatagram()
        {
            return transmits.Count > 0 ? transmits.Dequeue() : null;
        }

        /// <summary>The next message that arrived, or null.</summary>
        public byte[] NextMessage()
        {
            return messages.Count > 0 ? messages.Dequeue() : null;
        }

        /// <summary>Ends the session with <paramref name="error"/> (kept as <see cref="Error"/>).</summary>
        public void Fail(MovanException error)
        {
            if (phase == Phase.Failed) return;
            phase = Phase.Failed;
            Error = error;
        }

        private void HandleControl(byte[] d, int count, long now)
        {
            byte kind = UdpControl.KindOf(d, count, nonce);
            if (kind == UdpControl.Cookie && phase == Phase.Hello)
            {
                cookie = new byte[20];
                Buffer.BlockCopy(d, 14, cookie, 0, 20);
                phase = Phase.Connect;
                requests = 0;
                Request(now);
            }
            else if (kind == UdpControl.Accept && phase == Phase.Connect)
            {
                uint conv = (uint)(d[14] << 24 | d[15] << 16 | d[16] << 8 | d[17]);
                if (conv == 0) return;
                lastHeard = now;
                kcp = new Kcp(conv, options.Kcp);
                kcp.Update(Ms(now));
                phase = Phase.Open;
                foreach (byte[] body in queued) kcp.Send(body, 0, body.Length);
                queued.Clear();
                Flush(now);
            }
            else if (kind == UdpControl.Refused && phase == Phase.Connect)
            {
                if (d[14] == UdpControl.RefusedBadCookie)
                {
                    // The cookie went stale on the way: start again.
                    phase = Phase.Hello;
                    requests = 0;
                    Request(now);
                }
                else
                {
                    Fail(new MovanException(ErrorKind.Network, d[14] == UdpControl.RefusedBusy
                        ? "the sync server refused the UDP session: busy (a session or connection limit), try again later"
                        : "the sync server refused the UDP session (code " + d[14] + ")"));
                }
            }
        }

        /// <summary>Sends (again) the request of the current phase, or fails after <see cref="UdpTransportOptions.SetupAttempts"/>.</summary>
        private void Request(long now)
        {
            if (requests >= options.SetupAttempts)
            {
                Fail(new MovanException(ErrorKind.Timeout, "the sync server did not answer the UDP session set-up (" +
                    requests + " " + (phase == Phase.Hello ? "hello" : "connect") + " datagrams)"));
                return;
            }
            requests++;
            requestAt = now;
            transmits.Enqueue(phase == Phase.Hello ? UdpControl.EncodeHello(nonce) : UdpControl.EncodeConnect(nonce, cookie));
        }

        private void Flush(long now)
        {
            uint ms = Ms(now);
            kcp.Update(ms);
            kcp.Flush(ms);
            byte[] d;
            while ((d = kcp.NextDatagram()) != null)
            {
                transmits.Enqueue(d);
                lastSent = now;
            }
            if (kcp.IsDead)
            {
                Fail(new MovanException(ErrorKind.Network,
                    "the sync server stopped acknowledging the UDP session (a segment sent " + options.Kcp.DeadLink + " times)"));
            }
        }

        /// <summary>KCP's clock: milliseconds since the session started (it stays below 2^31 for 24 days).</summary>
        private uint Ms(long now)
        {
            return (uint)Math.Max(0, now - epoch);
        }
    }
}
