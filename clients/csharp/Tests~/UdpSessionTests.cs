using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>
    /// The UDP session set-up of docs/protocol.md §2.2 against its worked example (the cookie is opaque: echoed as it
    /// came), its resends and refusals, and the open session's keepalive, silence timeout and dead link, on fake time.
    /// </summary>
    [TestFixture]
    public class UdpSessionTests
    {
        private static readonly byte[] Nonce = { 1, 2, 3, 4, 5, 6, 7, 8 };
        private const string Cookie = "00000000" + "0201" + "0102030405060708" + "00000000" + "f3a97e79faa977a904173a268e9d51a1";
        private const string Accept = "00000000" + "0401" + "0102030405060708" + "12345678";

        private static byte[] Bytes(string hex)
        {
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }

        private static void Feed(UdpSession s, string hex, long now)
        {
            byte[] d = Bytes(hex);
            s.HandleDatagram(d, d.Length, now);
        }

        private static List<byte[]> Sent(UdpSession s)
        {
            var all = new List<byte[]>();
            byte[] d;
            while ((d = s.NextDatagram()) != null) all.Add(d);
            return all;
        }

        private static UdpSession Opened(UdpTransportOptions options, long now)
        {
            var s = new UdpSession(options, Nonce, now);
            Feed(s, Cookie, now);
            Feed(s, Accept, now);
            Sent(s);
            return s;
        }

        [Test]
        public void The_set_up_is_the_documented_bytes_and_opens_kcp_with_the_servers_conv()
        {
            var s = new UdpSession(new UdpTransportOptions(), Nonce, 0);
            List<byte[]> hello = Sent(s);
            Assert.AreEqual(1, hello.Count);
            Assert.AreEqual("00000000" + "0101" + "0102030405060708" + new string('0', 100), KcpTests.Hex(hello[0]), "64 bytes");
            Feed(s, Cookie, 3);
            List<byte[]> connect = Sent(s);
            Assert.AreEqual(1, connect.Count);
            Assert.AreEqual("00000000" + "0301" + "0102030405060708" + "00000000f3a97e79faa977a904173a268e9d51a1" + new string('0', 60),
                KcpTests.Hex(connect[0]), "64 bytes, the cookie echoed");
            Assert.IsFalse(s.IsOpen);
            // A message sent before the accept waits for it.
            s.Send(Encoding.ASCII.GetBytes("movan"), 0, 5, 5);
            Assert.AreEqual(0, Sent(s).Count);
            Feed(s, Accept, 10);
            Assert.IsTrue(s.IsOpen);
            Assert.AreEqual(0x12345678u, s.Conv);
            List<byte[]> kcp = Sent(s);
            Assert.AreEqual(1, kcp.Count);
            Assert.AreEqual("78563412" + "51" + "00" + "0001" + "0a000000" + "00000000" + "00000000" + "05000000" + "6d6f76616e",
                KcpTests.Hex(kcp[0]), "conv little-endian in KCP, ts 10 (KCP's clock starts with the set-up)");
        }

        [Test]
        public void Replies_to_another_nonce_or_out_of_turn_are_ignored()
        {
            var s = new UdpSession(new UdpTransportOptions(), Nonce, 0);
            Sent(s);
            Feed(s, Cookie.Replace("0102030405060708", "0102030405060709"), 1);
            Feed(s, Accept, 1);
            Feed(s, Cookie.Substring(0, 60), 1);
            Assert.AreEqual(0, Sent(s).Count);
            Assert.IsFalse(s.IsOpen);
            Feed(s, Cookie, 2);
            Assert.AreEqual(1, Sent(s).Count);
            Feed(s, Cookie, 3);
            Assert.AreEqual(0, Sent(s).Count, "a second cookie is not a reason to connect again");
        }

        [Test]
        public void Hello_and_connect_are_resent_every_250_ms_and_the_set_up_gives_up_after_20()
        {
            var s = new UdpSession(new UdpTransportOptions(), Nonce, 0);
            Sent(s);
            s.HandleTimeout(249);
            Assert.AreEqual(0, Sent(s).Count);
            Assert.AreEqual(250, s.NextTimeout(249));
            s.HandleTimeout(250);
            Assert.AreEqual(1, Sent(s)[0][4], "hello again");
            Feed(s, Cookie, 300);
            Sent(s);
            s.HandleTimeout(550);
            Assert.AreEqual(3, Sent(s)[0][4], "connect again");
            long now = 550;
            for (int i = 0; i < 30 && s.Error == null; i++)
            {
                now += 250;
                s.HandleTimeout(now);
            }
            Assert.AreEqual(300 + 20 * 250, now, "20 connects (from 300 ms), then it fails");
            Assert.AreEqual(ErrorKind.Timeout, s.Error.Kind);
            Assert.AreEqual(long.MaxValue, s.NextTimeout(now));
        }

        [Test]
        public void A_stale_cookie_starts_again_with_hello_and_busy_fails()
        {
            var s = new UdpSession(new UdpTransportOptions(), Nonce, 0);
            Sent(s);
            Feed(s, Cookie, 1);
            Sent(s);
            Feed(s, "00000000" + "0501" + "0102030405060708" + "02", 2);
            Assert.AreEqual(1, Sent(s).Single()[4], "bad cookie: hello again");
            Assert.IsNull(s.Error);
            Feed(s, Cookie, 3);
            Sent(s);
            Feed(s, "00000000" + "0501" + "0102030405060708" + "01", 4);
            Assert.AreEqual(ErrorKind.Network, s.Error.Kind);
            StringAssert.Contains("busy", s.Error.Message);
            Assert.Throws<MovanException>(() => s.Send(new byte[1], 0, 1, 5));
        }

        [Test]
        public void An_idle_session_probes_the_window_every_5_s_and_ends_after_15_s_of_silence()
        {
            UdpSession s = Opened(new UdpTransportOptions(), 0);
            Assert.AreEqual(5000, s.NextTimeout(0));
            s.HandleTimeout(4999);
            Assert.AreEqual(0, Sent(s).Count);
            s.HandleTimeout(5000);
            byte[] probe = Sent(s).Single();
            Assert.AreEqual(24, probe.Length);
            Assert.AreEqual(Kcp.CmdWindowAsk, probe[4]);
            Assert.AreEqual(0x12345678u, Kcp.Get32(probe, 0));
            // The server's answer (a window tell) keeps the session alive.
            var tell = new byte[24];
            Kcp.WriteHeader(tell, 0, 0x12345678, Kcp.CmdWindowTell, 0, 256, 0, 0, 0, 0);
            s.HandleDatagram(tell, 24, 5003);
            s.HandleTimeout(10000);
            Assert.AreEqual(Kcp.CmdWindowAsk, Sent(s).Single()[4]);
            s.HandleTimeout(15000);
            Sent(s);
            Assert.IsNull(s.Error);
            s.HandleTimeout(20002);
            Assert.IsNull(s.Error, "heard at 5003");
            s.HandleTimeout(20003);
            Assert.AreEqual(ErrorKind.Network, s.Error.Kind);
            StringAssert.Contains("no datagram", s.Error.Message);
        }

        [Test]
        public void An_unacknowledged_message_ends_the_session_with_a_dead_link()
        {
            UdpSession s = Opened(new UdpTransportOptions(), 0);
            // One message acknowledged 2 ms later: the RTO drops to its 30 ms minimum.
            var server = new Kcp(0x12345678, new KcpTuning());
            server.Update(0);
            s.Send(new byte[] { 1 }, 0, 1, 0);
            byte[] push = Sent(s).Single();
            server.Input(push, 0, push.Length, 1);
            server.Flush(1);
            byte[] ack = server.NextDatagram();
            s.HandleDatagram(ack, ack.Length, 2);
            Assert.AreEqual(0, s.WaitingToSend);
            long now = 2;
            s.Send(new byte[] { 2 }, 0, 1, now);
            int sends = Sent(s).Count;
            while (s.Error == null && now < 60000)
            {
                now = Math.Max(now + 1, s.NextTimeout(now));
                s.HandleTimeout(now);
                sends += Sent(s).Count(d => d[4] == Kcp.CmdPush);
            }
            Assert.AreEqual(12, sends);
            StringAssert.Contains("stopped acknowledging", s.Error.Message);
            Assert.That(now, Is.InRange(5050, 5200), "30 ms, growing by half each time: about 5 s");
        }

        [Test]
        public void Received_messages_are_acknowledged_at_once()
        {
            UdpSession s = Opened(new UdpTransportOptions(), 0);
            var server = new Kcp(0x12345678, new KcpTuning());
            server.Update(100);
            server.Send(Encoding.ASCII.GetBytes("{\"proto\":\"handshake\"}"), 0, 21);
            server.Flush(100);
            byte[] d = server.NextDatagram();
            s.HandleDatagram(d, d.Length, 40);
            Assert.AreEqual("{\"proto\":\"handshake\"}", Encoding.ASCII.GetString(s.NextMessage()));
            byte[] ack = Sent(s).Single();
            Assert.AreEqual(Kcp.CmdAck, ack[4]);
            Assert.AreEqual(100u, Kcp.Get32(ack, 8), "the server's ts echoed");
        }
    }
}
