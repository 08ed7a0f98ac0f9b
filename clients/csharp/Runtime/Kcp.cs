using System;
using System.Collections.Generic;

namespace Movan.Client
{
    /// <summary>
    /// KCP's settings (docs/protocol.md §2.2, "KCP parameters"). The defaults are the server's, which a client
    /// should use too: nodelay, a 10 ms interval, fast resend after 2 acks past a segment, no congestion window.
    /// </summary>
    public sealed class KcpTuning
    {
        /// <summary>Bytes per datagram, KCP's 24-byte header included (<c>ikcp_setmtu</c>); the server's <c>sync.udp_mtu</c>.</summary>
        public int Mtu = 1400;
        /// <summary>Milliseconds between KCP's timer runs (<c>ikcp_nodelay</c>'s interval, 10 to 5000).</summary>
        public int IntervalMs = 10;
        /// <summary>Resend a segment once this many later segments were acknowledged (0 = never early).</summary>
        public int FastResend = 2;
        /// <summary>KCP's nodelay mode: each resend waits 1.5 times the last timeout instead of twice it.</summary>
        public bool NoDelay = true;
        /// <summary>The shortest retransmission timeout (<c>rx_minrto</c>).</summary>
        public int MinRtoMs = 30;
        /// <summary>Segments in flight at most (<c>ikcp_wndsize</c>'s send window).</summary>
        public int SendWindow = 256;
        /// <summary>Segments this side buffers (the receive window it announces), at least 128.</summary>
        public int RecvWindow = 256;
        /// <summary>A segment sent this many times without an acknowledgement ends the session.</summary>
        public int DeadLink = 12;

        /// <summary>The longest message: 127 fragments of <see cref="Mtu"/> − 24 bytes (174,752 at 1400).</summary>
        public int MaxMessage { get { return Kcp.MaxFragments * (Mtu - Kcp.HeaderSize); } }

        internal KcpTuning Copy()
        {
            return (KcpTuning)MemberwiseClone();
        }
    }

    /// <summary>
    /// KCP, the ARQ protocol of skywind3000/kcp, in its message mode and wire format, with no congestion window and
    /// no IO: it takes datagrams and the time in milliseconds and queues the datagrams to send.
    /// </summary>
    /// <remarks>
    /// <para>Wire format, every integer little-endian: a datagram holds whole segments of a 24-byte header
    /// (<c>conv</c> u32, <c>cmd</c> u8, <c>frg</c> u8, <c>wnd</c> u16, <c>ts</c> u32, <c>sn</c> u32, <c>una</c> u32,
    /// <c>len</c> u32) and <c>len</c> bytes of data. Commands: <see cref="CmdPush"/> (data), <see cref="CmdAck"/>,
    /// <see cref="CmdWindowAsk"/> and <see cref="CmdWindowTell"/>. A message is split into fragments whose
    /// <c>frg</c> counts down to 0 on the last.</para>
    /// <para>The timing rules are the reference's: the RTO from the smoothed RTT (RFC 6298 style, bounded by the
    /// minimum RTO and 60 s), resends after the RTO grown by half each time (nodelay), fast resend once
    /// <see cref="KcpTuning.FastResend"/> later segments were acknowledged (at most 5 times), the dead link after
    /// <see cref="KcpTuning.DeadLink"/> transmissions, and window probes while the peer's window is 0.</para>
    /// <para>Not thread-safe: one owner drives it. Times are milliseconds on any clock, wrapping at 2^32; keep
    /// them below 2^31 (the server drops echoed timestamps above).</para>
    /// </remarks>
    internal sealed class Kcp
    {
        public const int HeaderSize = 24;
        public const byte CmdPush = 81;
        public const byte CmdAck = 82;
        public const byte CmdWindowAsk = 83;
        public const byte CmdWindowTell = 84;
        /// <summary>Fragments of one message at most (the reference refuses 128 or more).</summary>
        public const int MaxFragments = 127;

        private const int AskSend = 1;
        private const int AskTell = 2;
        private const int MaxRto = 60000;
        private const int FastResendLimit = 5;
        private const uint ProbeInitial = 7000;
        private const uint ProbeLimit = 120000;

        private readonly uint conv;
        private readonly int mtu;
        private readonly int mss;
        private readonly uint interval;
        private readonly uint fastResend;
        private readonly bool noDelay;
        private readonly int minRto;
        private readonly uint sendWindow;
        private readonly uint recvWindow;
        private readonly uint deadLink;

        private readonly Queue<Segment> sendQueue = new Queue<Segment>();
        private readonly List<Segment> sendBuf = new List<Segment>();
        private readonly List<Segment> recvBuf = new List<Segment>();
        private readonly List<Segment> recvQueue = new List<Segment>();
        private readonly List<uint> acks = new List<uint>();
        private readonly Queue<byte[]> outbox = new Queue<byte[]>();
        private readonly byte[] buffer;
        private int buffered;

        private uint sndUna;
        private uint sndNxt;
        private uint rcvNxt;
        private uint remoteWindow;
        private int srtt;
        private int rttVar;
        private int rto = 200;
        private uint current;
        private uint nextFlush;
        private bool updated;
        private int probe;
        private uint probeAt;
        private uint probeWait;

        public Kcp(uint conv, KcpTuning tuning)
        {
            if (tuning.Mtu < 50 || tuning.Mtu > 65507) throw new ArgumentOutOfRangeException("tuning", "Mtu must be 50 to 65507");
            this.conv = conv;
            mtu = tuning.Mtu;
            mss = mtu - HeaderSize;
            interval = (uint)Math.Max(10, Math.Min(5000, tuning.IntervalMs));
            fastResend = (uint)Math.Max(0, tuning.FastResend);
            noDelay = tuning.NoDelay;
            minRto = Math.Max(1, tuning.MinRtoMs);
            sendWindow = (uint)Math.Max(1, tuning.SendWindow);
            recvWindow = (uint)Math.Max(128, tuning.RecvWindow);
            deadLink = (uint)Math.Max(1, tuning.DeadLink);
            remoteWindow = 128;
            buffer = new byte[mtu];
        }

        /// <summary>The session id every segment carries.</summary>
        public uint Conv { get { return conv; } }

        /// <summary>True once a segment was sent <see cref="KcpTuning.DeadLink"/> times without an acknowledgement.</summary>
        public bool IsDead { get; private set; }

        /// <summary>Segments not yet acknowledged or not yet sent.</summary>
        public int WaitingToSend { get { return sendBuf.Count + sendQueue.Count; } }

        /// <summary>The current retransmission timeout, in milliseconds.</summary>
        public int Rto { get { return rto; } }

        /// <summary>Queues one message, in fragments; false when it needs more than <see cref="MaxFragments"/>.</summary>
        public bool Send(byte[] data, int offset, int count)
        {
            int fragments = count <= mss ? 1 : (count + mss - 1) / mss;
            if (fragments > MaxFragments) return false;
            for (int i = 0; i < fragments; i++)
            {
                int size = Math.Min(count, mss);
                var seg = new Segment(size);
                Buffer.BlockCopy(data, offset, seg.Data, 0, size);
                seg.Frg = (byte)(fragments - i - 1);
                sendQueue.Enqueue(seg);
                offset += size;
                count -= size;
            }
            return true;
        }

        /// <summary>The next whole message that arrived, or null.</summary>
        public byte[] Receive()
        {
            int size = PeekSize();
            if (size < 0) return null;
            bool wasFull = recvQueue.Count >= recvWindow;
            var message = new byte[size];
            int at = 0;
            int used = 0;
            while (true)
            {
                Segment seg = recvQueue[used++];
                Buffer.BlockCopy(seg.Data, 0, message, at, seg.Data.Length);
                at += seg.Data.Length;
                if (seg.Frg == 0) break;
            }
            recvQueue.RemoveRange(0, used);
            MoveReceived();
            // The peer stopped at our full window: tell it there is room again.
            if (wasFull && recvQueue.Count < recvWindow) probe |= AskTell;
            return message;
        }

        /// <summary>The size of the next whole message, or −1 when none has arrived entirely.</summary>
        public int PeekSize()
        {
            if (recvQueue.Count == 0) return -1;
            Segment first = recvQueue[0];
            if (first.Frg == 0) return first.Data.Length;
            if (recvQueue.Count < first.Frg + 1) return -1;
            int size = 0;
            foreach (Segment seg in recvQueue)
            {
                size += seg.Data.Length;
                if (seg.Frg == 0) break;
            }
            return size;
        }

        /// <summary>
        /// Takes one datagram from the peer at <paramref name="now"/>. It is checked whole first (whole segments,
        /// this <c>conv</c>, known commands), and ignored unless it passes: 0, or −1 (short or another conv),
        /// −2 (a length past the end) or −3 (an unknown command).
        /// </summary>
        public int Input(byte[] d, int offset, int count, uint now)
        {
            int check = Check(d, offset, count);
            if (check != 0) return check;
            current = now;
            bool acked = false;
            uint maxAck = 0;
            int end = offset + count;
            while (end - offset >= HeaderSize)
            {
                byte cmd = d[offset + 4];
                byte frg = d[offset + 5];
                uint wnd = (uint)(d[offset + 6] | d[offset + 7] << 8);
                uint ts = Get32(d, offset + 8);
                uint sn = Get32(d, offset + 12);
                uint una = Get32(d, offset + 16);
                int len = (int)Get32(d, offset + 20);
                offset += HeaderSize;
                remoteWindow = wnd;
                DropAcknowledged(una);
                switch (cmd)
                {
                    case CmdAck:
                        if (Diff(current, ts) >= 0) UpdateRtt(Diff(current, ts));
                        DropAcked(sn);
                        if (!acked || Diff(sn, maxAck) > 0) maxAck = sn;
                        acked = true;
                        break;
                    case CmdPush:
                        if (Diff(sn, rcvNxt + recvWindow) < 0)
                        {
                            acks.Add(sn);
                            acks.Add(ts);
                            if (Diff(sn, rcvNxt) >= 0)
                            {
                                var seg = new Segment(len) { Sn = sn, Frg = frg };
                                Buffer.BlockCopy(d, offset, seg.Data, 0, len);
                                Insert(seg);
                            }
                        }
                        break;
                    case CmdWindowAsk:
                        probe |= AskTell;
                        break;
                }
                offset += len;
            }
            if (acked) CountFastAcks(maxAck);
            return 0;
        }

        /// <summary>Asks the peer for its window (<see cref="CmdWindowAsk"/>) in the next flush: a keepalive it answers.</summary>
        public void AskWindow()
        {
            probe |= AskSend;
        }

        /// <summary>KCP's timer (<c>ikcp_update</c>): flushes when an interval has passed since the last one.</summary>
        public void Update(uint now)
        {
            current = now;
            if (!updated)
            {
                updated = true;
                nextFlush = now;
            }
            int slap = Diff(now, nextFlush);
            if (slap >= 10000 || slap < -10000)
            {
                nextFlush = now;
                slap = 0;
            }
            if (slap >= 0)
            {
                nextFlush += interval;
                if (Diff(now, nextFlush) >= 0) nextFlush = now + interval;
                Flush(now);
            }
        }

        /// <summary>When <see cref="Update"/> must run next (at most one interval away; now when a resend is due).</summary>
        public uint NextUpdate(uint now)
        {
            if (!updated) return now;
            int untilFlush = Diff(nextFlush, now);
            if (untilFlush >= 10000 || untilFlush < -10000) return now;
            if (untilFlush <= 0) return now;
            int soonest = untilFlush;
            foreach (Segment seg in sendBuf)
            {
                int d = Diff(seg.ResendAt, now);
                if (d <= 0) return now;
                if (d < soonest) soonest = d;
            }
            return now + (uint)Math.Min(soonest, (int)interval);
        }

        /// <summary>Sends what is due now: acknowledgements, window probes, new segments, resends.</summary>
        public void Flush(uint now)
        {
            current = now;
            if (!updated) return;
            uint wnd = recvQueue.Count < recvWindow ? recvWindow - (uint)recvQueue.Count : 0;
            for (int i = 0; i < acks.Count; i += 2)
            {
                Reserve(HeaderSize);
                Header(CmdAck, 0, wnd, acks[i + 1], acks[i], 0);
            }
            acks.Clear();
            ProbeZeroWindow();
            if ((probe & AskSend) != 0)
            {
                Reserve(HeaderSize);
                Header(CmdWindowAsk, 0, wnd, 0, 0, 0);
            }
            if ((probe & AskTell) != 0)
            {
                Reserve(HeaderSize);
                Header(CmdWindowTell, 0, wnd, 0, 0, 0);
            }
            probe = 0;
            // No congestion window: as much as both windows allow.
            uint window = Math.Min(sendWindow, remoteWindow);
            while (sendQueue.Count > 0 && Diff(sndNxt, sndUna + window) < 0)
            {
                Segment seg = sendQueue.Dequeue();
                seg.Sn = sndNxt++;
                seg.Xmit = 0;
                seg.FastAck = 0;
                sendBuf.Add(seg);
            }
            uint earlyAfter = fastResend > 0 ? fastResend : uint.MaxValue;
            uint rtoMin = noDelay ? 0 : (uint)(rto >> 3);
            foreach (Segment seg in sendBuf)
            {
                bool send = false;
                if (seg.Xmit == 0)
                {
                    send = true;
                    seg.Rto = (uint)rto;
                    seg.ResendAt = current + seg.Rto + rtoMin;
                }
                else if (Diff(current, seg.ResendAt) >= 0)
                {
                    send = true;
                    seg.Rto += noDelay ? seg.Rto / 2 : Math.Max(seg.Rto, (uint)rto);
                    seg.ResendAt = current + seg.Rto;
                }
                else if (seg.FastAck >= earlyAfter && seg.Xmit <= FastResendLimit)
                {
                    send = true;
                    seg.FastAck = 0;
                    seg.ResendAt = current + seg.Rto;
                }
                if (!send) continue;
                seg.Xmit++;
                seg.Ts = current;
                Reserve(HeaderSize + seg.Data.Length);
                Header(CmdPush, seg.Frg, wnd, seg.Ts, seg.Sn, seg.Data.Length);
                Buffer.BlockCopy(seg.Data, 0, buffer, buffered, seg.Data.Length);
                buffered += seg.Data.Length;
                if (seg.Xmit >= deadLink) IsDead = true;
            }
            Emit();
        }

        /// <summary>The next datagram to send, or null.</summary>
        public byte[] NextDatagram()
        {
            return outbox.Count > 0 ? outbox.Dequeue() : null;
        }

        /// <summary>Writes one segment header into the datagram being built; <c>una</c> is always what we expect next.</summary>
        internal static void WriteHeader(byte[] b, int at, uint conv, byte cmd, byte frg, uint wnd, uint ts, uint sn, uint una, int len)
        {
            Put32(b, at, conv);
            b[at + 4] = cmd;
            b[at + 5] = frg;
            b[at + 6] = (byte)wnd;
            b[at + 7] = (byte)(wnd >> 8);
            Put32(b, at + 8, ts);
            Put32(b, at + 12, sn);
            Put32(b, at + 16, una);
            Put32(b, at + 20, (uint)len);
        }

        internal static uint Get32(byte[] b, int at)
        {
            return (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24);
        }

        internal static void Put32(byte[] b, int at, uint v)
        {
            b[at] = (byte)v;
            b[at + 1] = (byte)(v >> 8);
            b[at + 2] = (byte)(v >> 16);
            b[at + 3] = (byte)(v >> 24);
        }

        /// <summary>The signed distance from <paramref name="b"/> to <paramref name="a"/> on the wrapping 32-bit clock.</summary>
        private static int Diff(uint a, uint b)
        {
            return (int)(a - b);
        }

        private int Check(byte[] d, int offset, int count)
        {
            if (count < HeaderSize) return -1;
            int end = offset + count;
            while (end - offset >= HeaderSize)
            {
                if (Get32(d, offset) != conv) return -1;
                byte cmd = d[offset + 4];
                if (cmd < CmdPush || cmd > CmdWindowTell) return -3;
                uint len = Get32(d, offset + 20);
                if (len > (uint)(end - offset - HeaderSize)) return -2;
                offset += HeaderSize + (int)len;
            }
            return 0;
        }

        private void Header(byte cmd, byte frg, uint wnd, uint ts, uint sn, int len)
        {
            WriteHeader(buffer, buffered, conv, cmd, frg, wnd, ts, sn, rcvNxt, len);
            buffered += HeaderSize;
        }

        /// <summary>Sends the datagram being built first if <paramref name="bytes"/> more would pass the MTU.</summary>
        private void Reserve(int bytes)
        {
            if (buffered + bytes > mtu) Emit();
        }

        private void Emit()
        {
            if (buffered == 0) return;
            var d = new byte[buffered];
            Buffer.BlockCopy(buffer, 0, d, 0, buffered);
            outbox.Enqueue(d);
            buffered = 0;
        }

        /// <summary>While the peer's window is 0, ask for it after 7 s, then 1.5 times longer each time, up to 120 s.</summary>
        private void ProbeZeroWindow()
        {
            if (remoteWindow != 0)
            {
                probeAt = 0;
                probeWait = 0;
                return;
            }
            if (probeWait == 0)
            {
                probeWait = ProbeInitial;
                probeAt = current + probeWait;
            }
            else if (Diff(current, probeAt) >= 0)
            {
                probeWait = Math.Min(ProbeLimit, Math.Max(probeWait, ProbeInitial) * 3 / 2);
                probeAt = current + probeWait;
                probe |= AskSend;
            }
        }

        private void UpdateRtt(int rtt)
        {
            if (srtt == 0)
            {
                srtt = rtt;
                rttVar = rtt / 2;
            }
            else
            {
                int delta = Math.Abs(rtt - srtt);
                rttVar = (3 * rttVar + delta) / 4;
                srtt = Math.Max(1, (7 * srtt + rtt) / 8);
            }
            int next = srtt + Math.Max((int)interval, 4 * rttVar);
            rto = Math.Min(MaxRto, Math.Max(minRto, next));
        }

        /// <summary>Everything before <paramref name="una"/> arrived at the peer.</summary>
        private void DropAcknowledged(uint una)
        {
            int n = 0;
            while (n < sendBuf.Count && Diff(una, sendBuf[n].Sn) > 0) n++;
            if (n > 0) sendBuf.RemoveRange(0, n);
            sndUna = sendBuf.Count > 0 ? sendBuf[0].Sn : sndNxt;
        }

        private void DropAcked(uint sn)
        {
            if (Diff(sn, sndUna) < 0 || Diff(sn, sndNxt) >= 0) return;
            for (int i = 0; i < sendBuf.Count; i++)
            {
                int d = Diff(sn, sendBuf[i].Sn);
                if (d == 0)
                {
                    sendBuf.RemoveAt(i);
                    break;
                }
                if (d < 0) break;
            }
            sndUna = sendBuf.Count > 0 ? sendBuf[0].Sn : sndNxt;
        }

        /// <summary>Every segment older than the newest acknowledged one was skipped once more.</summary>
        private void CountFastAcks(uint maxAck)
        {
            if (Diff(maxAck, sndUna) < 0 || Diff(maxAck, sndNxt) >= 0) return;
            foreach (Segment seg in sendBuf)
            {
                if (Diff(maxAck, seg.Sn) <= 0) break;
                seg.FastAck++;
            }
        }

        /// <summary>Files a data segment by <c>sn</c> (a duplicate is dropped), then moves what is in order to the queue.</summary>
        private void Insert(Segment seg)
        {
            int i = recvBuf.Count - 1;
            for (; i >= 0; i--)
            {
                int d = Diff(seg.Sn, recvBuf[i].Sn);
                if (d == 0) return;
                if (d > 0) break;
            }
            recvBuf.Insert(i + 1, seg);
            MoveReceived();
        }

        private void MoveReceived()
        {
            int n = 0;
            while (n < recvBuf.Count && recvBuf[n].Sn == rcvNxt && recvQueue.Count < recvWindow)
            {
                recvQueue.Add(recvBuf[n]);
                rcvNxt++;
                n++;
            }
            if (n > 0) recvBuf.RemoveRange(0, n);
        }

        private sealed class Segment
        {
            public readonly byte[] Data;
            public uint Sn;
            public byte Frg;
            public uint Ts;
            public uint Rto;
            public uint ResendAt;
            public uint Xmit;
            public uint FastAck;

            public Segment(int size)
            {
                Data = new byte[size];
            }
        }
    }
}
