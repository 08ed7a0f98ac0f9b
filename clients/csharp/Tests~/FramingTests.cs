using System;
using System.Collections.Generic;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>The length-prefixed framing of docs/protocol.md §2, fed in every way a socket can split and merge it.</summary>
    [TestFixture]
    public class FramingTests
    {
        private static readonly string[] Bodies =
        {
            "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[]}}",
            "",
            "{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":1700000000.17}}",
            new string('x', 5000),
            "{\"a\":\"\u00e9\u4e16\"}",
        };

        private static byte[] Stream(out List<byte[]> bodies)
        {
            bodies = new List<byte[]>();
            var wire = new List<byte>();
            foreach (string s in Bodies)
            {
                byte[] b = Encoding.UTF8.GetBytes(s);
                bodies.Add(b);
                wire.AddRange(FrameDecoder.Encode(b, 0, b.Length));
            }
            return wire.ToArray();
        }

        private static List<byte[]> Drain(FrameDecoder d)
        {
            var got = new List<byte[]>();
            byte[] body;
            while (d.TryNext(out body)) got.Add(body);
            return got;
        }

        [Test]
        public void Doc_example_ping_frame()
        {
            byte[] body = ClientMessages.Envelope("1001", null, "ping", null, null, null);
            byte[] wire = FrameDecoder.Encode(body, 0, body.Length);
            Assert.AreEqual("0000002c7b22756964223a2231303031222c2265787472615f64617461223a7b2270726f746f223a2270696e67227d7d",
                Hex.Of(wire));
        }

        [Test]
        public void Doc_example_empty_server_frame_has_prefix_3c()
        {
            byte[] body = Encoding.UTF8.GetBytes("{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[]}}");
            Assert.AreEqual("0000003c", Hex.Of(FrameDecoder.Encode(body, 0, body.Length)).Substring(0, 8));
        }

        [Test]
        public void All_frames_in_one_read()
        {
            List<byte[]> bodies;
            byte[] wire = Stream(out bodies);
            var d = new FrameDecoder();
            d.Push(wire, 0, wire.Length);
            AssertBodies(bodies, Drain(d));
            Assert.AreEqual(0, d.Buffered);
        }

        [Test]
        public void One_byte_per_read()
        {
            List<byte[]> bodies;
            byte[] wire = Stream(out bodies);
            var d = new FrameDecoder();
            var got = new List<byte[]>();
            for (int i = 0; i < wire.Length; i++)
            {
                d.Push(wire, i, 1);
                got.AddRange(Drain(d));
            }
            AssertBodies(bodies, got);
        }

        [Test]
        public void Every_split_point_of_two_reads()
        {
            List<byte[]> bodies;
            byte[] wire = Stream(out bodies);
            for (int cut = 0; cut <= wire.Length; cut++)
            {
                var d = new FrameDecoder();
                d.Push(wire, 0, cut);
                var got = Drain(d);
                d.Push(wire, cut, wire.Length - cut);
                got.AddRange(Drain(d));
                AssertBodies(bodies, got, "cut at " + cut);
            }
        }

        [Test]
        public void Random_reads_of_random_sizes()
        {
            List<byte[]> bodies;
            byte[] wire = Stream(out bodies);
            var rng = new Random(17);
            for (int round = 0; round < 200; round++)
            {
                var d = new FrameDecoder();
                var got = new List<byte[]>();
                int pos = 0;
                while (pos < wire.Length)
                {
                    int n = Math.Min(wire.Length - pos, rng.Next(1, 3000));
                    d.Push(wire, pos, n);
                    pos += n;
                    got.AddRange(Drain(d));
                }
                AssertBodies(bodies, got, "round " + round);
            }
        }

        [Test]
        public void A_prefix_above_the_limit_fails_before_the_body_arrives()
        {
            var d = new FrameDecoder(1024);
            d.Push(new byte[] { 0, 0, 4, 1 }, 0, 4);
            byte[] body;
            var e = Assert.Throws<MovanException>(() => d.TryNext(out body));
            Assert.AreEqual(ErrorKind.Protocol, e.Kind);
        }

        [Test]
        public void Exactly_the_limit_is_accepted()
        {
            var d = new FrameDecoder(1024);
            byte[] wire = FrameDecoder.Encode(new byte[1024], 0, 1024);
            d.Push(wire, 0, wire.Length);
            byte[] body;
            Assert.IsTrue(d.TryNext(out body));
            Assert.AreEqual(1024, body.Length);
        }

        [Test]
        public void A_partial_prefix_is_not_enough()
        {
            var d = new FrameDecoder();
            d.Push(new byte[] { 0, 0, 0 }, 0, 3);
            byte[] body;
            Assert.IsFalse(d.TryNext(out body));
            d.Push(new byte[] { 2, (byte)'{' }, 0, 2);
            Assert.IsFalse(d.TryNext(out body));
            d.Push(new byte[] { (byte)'}' }, 0, 1);
            Assert.IsTrue(d.TryNext(out body));
            Assert.AreEqual("{}", Encoding.ASCII.GetString(body));
        }

        private static void AssertBodies(List<byte[]> expected, List<byte[]> got, string what = "")
        {
            Assert.AreEqual(expected.Count, got.Count, what);
            for (int i = 0; i < expected.Count; i++)
            {
                // A hand loop: CollectionAssert is too slow for thousands of 5 KB comparisons.
                bool same = expected[i].Length == got[i].Length;
                for (int j = 0; same && j < expected[i].Length; j++) same = expected[i][j] == got[i][j];
                Assert.IsTrue(same, what + " body " + i);
            }
        }
    }
}
