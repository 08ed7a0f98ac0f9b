using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>
    /// The C# KCP: its wire format against docs/protocol.md §2.2, and two of them through a seeded lossy,
    /// duplicating and reordering link on fake time (every message delivered once, in order, byte-identical).
    /// <see cref="KcpInteropTests"/> runs it against the reference ikcp.c.
    /// </summary>
    [TestFixture]
    public class KcpTests
    {
        internal static string Hex(byte[] b)
        {
            return BitConverter.ToString(b).Replace("-", "").ToLowerInvariant();
        }

        [Test]
        public void A_first_segment_is_the_documented_bytes()
        {
            // docs/protocol.md §2.2, "Worked example": the 5-byte message `movan` as the first segment at 10 ms.
            var k = new Kcp(0x01020304, new KcpTuning());
            k.Update(10);
            Assert.IsTrue(k.Send(Encoding.ASCII.GetBytes("movan"), 0, 5));
            k.Flush(10);
            Assert.AreEqual("04030201" + "51" + "00" + "0001" + "0a000000" + "00000000" + "00000000" + "05000000" + "6d6f76616e",
                Hex(k.NextDatagram()));
            Assert.IsNull(k.NextDatagram());
        }

        [Test]
        public void An_ack_echoes_sn_and_ts_and_carries_una_and_the_free_window()
        {
            var a = new Kcp(7, new KcpTuning());
            var b = new Kcp(7, new KcpTuning());
            a.Update(1000);
            b.Update(0);
            a.Send(new byte[] { 1, 2, 3 }, 0, 3);
            a.Flush(1000);
            byte[] push = a.NextDatagram();
            Assert.AreEqual(0, b.Input(push, 0, push.Length, 5));
            b.Flush(5);
            byte[] ack = b.NextDatagram();
            // conv 7, cmd 82 (ack), frg 0, wnd 255 (one of 256 taken until read), ts 1000 (echoed), sn 0, una 1, len 0.
            Assert.AreEqual("07000000" + "52" + "00" + "ff00" + "e8030000" + "00000000" + "01000000" + "00000000", Hex(ack));
            CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, b.Receive());
            Assert.AreEqual(1, a.WaitingToSend);
            Assert.AreEqual(0, a.Input(ack, 0, ack.Length, 1020));
            Assert.AreEqual(0, a.WaitingToSend, "acknowledged");
        }

        [Test]
        public void A_message_is_split_into_fragments_counting_down_and_127_is_the_most()
        {
            var tuning = new KcpTuning();
            var a = new Kcp(9, tuning);
            a.Update(0);
            Assert.IsFalse(a.Send(new byte[tuning.MaxMessage + 1], 0, tuning.MaxMessage + 1), "128 fragments");
            Assert.AreEqual(0, a.WaitingToSend, "nothing queued");
            Assert.AreEqual(174752, tuning.MaxMessage);
            var msg = new byte[3000];
            new Random(3).NextBytes(msg);
            Assert.IsTrue(a.Send(msg, 0, msg.Length));
            a.Flush(0);
            var frgs = new List<int>();
            var lens = new List<int>();
            byte[] d;
            while ((d = a.NextDatagram()) != null)
            {
                for (int at = 0; at < d.Length; at += 24 + (int)Kcp.Get32(d, at + 20))
                {
                    frgs.Add(d[at + 5]);
                    lens.Add((int)Kcp.Get32(d, at + 20));
                }
                Assert.That(d.Length, Is.LessThanOrEqualTo(1400));
            }
            CollectionAssert.AreEqual(new[] { 2, 1, 0 }, frgs);
            CollectionAssert.AreEqual(new[] { 1376, 1376, 248 }, lens);
        }

        [Test]
        public void Bad_datagrams_are_refused_whole()
        {
            var a = new Kcp(5, new KcpTuning());
            var b = new Kcp(5, new KcpTuning());
            a.Update(0);
            b.Update(0);
            a.Send(new byte[] { 42 }, 0, 1);
            a.Flush(0);
            byte[] good = a.NextDatagram();
            Assert.AreEqual(-1, b.Input(good, 0, 23, 1), "short");
            byte[] other = (byte[])good.Clone();
            other[0] = 6;
            Assert.AreEqual(-1, b.Input(other, 0, other.Length, 1), "another conv");
            byte[] cmd = (byte[])good.Clone();
            cmd[4] = 80;
            Assert.AreEqual(-3, b.Input(cmd, 0, cmd.Length, 1), "unknown command");
            byte[] len = (byte[])good.Clone();
            len[20] = 2;
            Assert.AreEqual(-2, b.Input(len, 0, len.Length, 1), "a length past the end");
            // A good segment followed by a bad one: nothing of it is taken.
            var two = good.Concat(cmd).ToArray();
            Assert.AreEqual(-3, b.Input(two, 0, two.Length, 1));
            Assert.IsNull(b.Receive());
            Assert.AreEqual(0, b.Input(good, 0, good.Length, 1));
            CollectionAssert.AreEqual(new byte[] { 42 }, b.Receive());
        }

        [Test]
        public void A_lost_segment_is_resent_early_once_two_later_ones_are_acknowledged()
        {
            var a = new Kcp(1, new KcpTuning());
            var b = new Kcp(1, new KcpTuning());
            a.Update(0);
            b.Update(0);
            for (int i = 0; i < 5; i++) a.Send(new byte[1376], 0, 1376);
            a.Flush(0);
            var sent = new List<byte[]>();
            byte[] d;
            while ((d = a.NextDatagram()) != null) sent.Add(d);
            Assert.AreEqual(5, sent.Count, "one full segment per datagram");
            // sn 0 is lost; 1 to 4 arrive, and each is acknowledged at once.
            foreach (byte[] s in sent.Skip(1))
            {
                b.Input(s, 0, s.Length, 2);
                b.Flush(2);
                byte[] ack = b.NextDatagram();
                a.Input(ack, 0, ack.Length, 4);
            }
            a.Flush(5);
            byte[] resent = a.NextDatagram();
            Assert.IsNotNull(resent, "resent at 5 ms, long before the 200 ms RTO");
            Assert.AreEqual(0u, Kcp.Get32(resent, 12), "sn 0");
            Assert.AreEqual(0, b.Input(resent, 0, resent.Length, 7));
            for (int i = 0; i < 5; i++) Assert.IsNotNull(b.Receive(), "message " + i);
        }

        [Test]
        public void A_segment_sent_dead_link_times_unacknowledged_is_a_dead_link_after_about_5_seconds()
        {
            var link = new LossyLink(1, 0, 0, 2, 2);
            var pair = new KcpPair(link, new KcpTuning(), true);
            // One exchange measures the round trip: the RTO drops to the 30 ms minimum.
            pair.K[0].Send(new byte[] { 1 }, 0, 1);
            long now = pair.RunUntil(0, 1000, () => pair.Received[1].Count == 1 && pair.K[0].WaitingToSend == 0);
            Assert.AreEqual(30, pair.K[0].Rto);
            link.Cut = true;
            int before = link.Sent;
            long cut = now;
            pair.K[0].Send(new byte[] { 2 }, 0, 1);
            now = pair.RunUntil(now, now + 60000, () => pair.K[0].IsDead);
            Assert.AreEqual(12, link.Sent - before, "sent 12 times (dead_link)");
            Assert.That(now - cut, Is.InRange(5000, 5300), "30 ms, then 1.5 times longer each time");
        }

        [Test]
        public void Messages_cross_a_lossy_reordering_link_once_each_in_order_and_byte_identical([Range(1, 12)] int seed)
        {
            var rng = new Random(seed);
            var link = new LossyLink(seed, 0.2, 0.05, 1, 80);
            var pair = new KcpPair(link, new KcpTuning(), seed % 2 == 0);
            if (seed % 3 == 0) pair.ReadEveryMs = 700; // a slow reader: its window fills
            var sent = new[] { new List<byte[]>(), new List<byte[]>() };
            for (int side = 0; side < 2; side++)
            {
                for (int i = 0; i < 150; i++)
                {
                    int size = rng.Next(10) == 0 ? rng.Next(20000) : rng.Next(200);
                    var m = new byte[size];
                    rng.NextBytes(m);
                    sent[side].Add(m);
                }
            }
            int[] next = { 0, 0 };
            long now = 0;
            while (now < 600000 && (pair.Received[0].Count < 150 || pair.Received[1].Count < 150))
            {
                for (int side = 0; side < 2; side++)
                {
                    if (next[side] < 150 && rng.Next(4) == 0)
                    {
                        byte[] m = sent[side][next[side]++];
                        Assert.IsTrue(pair.K[side].Send(m, 0, m.Length));
                    }
                }
                now += rng.Next(1, 6);
                pair.Step(now);
            }
            Assert.That(link.Dropped, Is.GreaterThan(link.Sent / 10), "the link really lost datagrams");
            for (int side = 0; side < 2; side++)
            {
                List<byte[]> got = pair.Received[1 - side];
                Assert.AreEqual(150, got.Count, "side " + side + "'s messages arrived (t = " + now + " ms)");
                for (int i = 0; i < 150; i++) CollectionAssert.AreEqual(sent[side][i], got[i], "side " + side + " message " + i);
            }
        }

        [Test]
        public void A_full_receive_window_stops_the_sender_until_the_reader_catches_up()
        {
            var link = new LossyLink(5, 0, 0, 3, 3);
            var tuning = new KcpTuning { SendWindow = 1000 };
            var pair = new KcpPair(link, tuning, true) { ReadEveryMs = int.MaxValue };
            for (int i = 0; i < 400; i++) pair.K[0].Send(new byte[] { (byte)i }, 0, 1);
            long now = pair.RunUntil(0, 2000, () => false);
            Assert.AreEqual(0, pair.Received[1].Count);
            Assert.AreEqual(400 - 256, pair.K[0].WaitingToSend, "256 segments in the reader's window, the rest wait");
            pair.ReadEveryMs = 1;
            pair.RunUntil(now, now + 30000, () => pair.Received[1].Count == 400);
            Assert.AreEqual(400, pair.Received[1].Count);
            for (int i = 0; i < 400; i++) Assert.AreEqual((byte)i, pair.Received[1][i][0]);
        }
    }

    /// <summary>Two KCPs over a <see cref="LossyLink"/>, stepped on fake time as <see cref="UdpSession"/> drives one.</summary>
    internal sealed class KcpPair
    {
        public readonly Kcp[] K;
        public readonly List<byte[]>[] Received = { new List<byte[]>(), new List<byte[]>() };
        public int ReadEveryMs;
        private readonly LossyLink link;
        private readonly bool ackAtOnce;
        private long lastRead;

        public KcpPair(LossyLink link, KcpTuning tuning, bool ackAtOnce)
        {
            this.link = link;
            this.ackAtOnce = ackAtOnce;
            K = new[] { new Kcp(0x2a, tuning), new Kcp(0x2a, tuning) };
        }

        public void Step(long now)
        {
            for (int side = 0; side < 2; side++)
            {
                K[side].Update((uint)now);
                Drain(side, now);
            }
            foreach (KeyValuePair<int, byte[]> d in link.Deliver(now))
            {
                K[d.Key].Input(d.Value, 0, d.Value.Length, (uint)now);
                if (ackAtOnce)
                {
                    K[d.Key].Flush((uint)now);
                    Drain(d.Key, now);
                }
            }
            if (ReadEveryMs == 0 || (ReadEveryMs != int.MaxValue && now - lastRead >= ReadEveryMs))
            {
                lastRead = now;
                for (int side = 0; side < 2; side++)
                {
                    byte[] m;
                    while ((m = K[side].Receive()) != null) Received[side].Add(m);
                }
            }
        }

        /// <summary>Steps 1 ms at a time until <paramref name="done"/> or <paramref name="until"/>; returns the time reached.</summary>
        public long RunUntil(long now, long until, Func<bool> done)
        {
            while (now < until && !done())
            {
                now++;
                Step(now);
            }
            return now;
        }

        private void Drain(int side, long now)
        {
            byte[] d;
            while ((d = K[side].NextDatagram()) != null) link.Send(side, d, now);
        }
    }
}
