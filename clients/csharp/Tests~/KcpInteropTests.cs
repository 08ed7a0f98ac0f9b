using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>
    /// The C# KCP against the reference ikcp.c (PyPI's <c>kcp</c> 0.1.6 binds it; Tests~/interop/kcp_peer.py drives
    /// it on the test's fake time) through a seeded lossy, duplicating, reordering <see cref="LossyLink"/>: the
    /// reference receives every C# message once, in order, byte-identical, and its echoes come back the same way.
    /// Ignored when python3 or its <c>kcp</c> package is missing (<c>pip install kcp==0.1.6</c>).
    /// </summary>
    [TestFixture]
    public class KcpInteropTests
    {
        private const uint Conv = 0x12345678;

        private static string PeerScript()
        {
            string data = Environment.GetEnvironmentVariable("MOVAN_CS_TEST_DATA");
            if (string.IsNullOrEmpty(data)) Assert.Ignore("MOVAN_CS_TEST_DATA is not set: run clients/csharp/test.sh");
            return Path.Combine(Path.Combine(data, ".."), Path.Combine("interop", "kcp_peer.py"));
        }

        [Test]
        public void The_reference_kcp_gets_every_message_and_echoes_it_back_through_a_lossy_link([Values(1, 2, 3)] int seed)
        {
            using (var peer = ReferencePeer.Start(PeerScript(), Conv))
            {
                var rng = new Random(seed);
                var link = new LossyLink(seed, 0.15, 0.03, 1, 60);
                var kcp = new Kcp(Conv, new KcpTuning());
                var sent = new List<byte[]>();
                for (int i = 0; i < 120; i++)
                {
                    int size = rng.Next(8) == 0 ? 1 + rng.Next(20000) : 1 + rng.Next(300);
                    var m = new byte[size];
                    rng.NextBytes(m);
                    sent.Add(m);
                }
                var echoes = new List<byte[]>();
                int next = 0;
                long now = 0;
                long lastTick = -10;
                while (now < 120000 && (echoes.Count < sent.Count || peer.Received.Count < sent.Count))
                {
                    if (next < sent.Count && rng.Next(3) == 0)
                    {
                        byte[] m = sent[next++];
                        Assert.IsTrue(kcp.Send(m, 0, m.Length));
                    }
                    now += rng.Next(1, 5);
                    kcp.Update((uint)now);
                    Drain(kcp, link, now);
                    if (now - lastTick >= 10)
                    {
                        lastTick = now;
                        foreach (byte[] d in peer.Tick(now)) link.Send(1, d, now);
                    }
                    foreach (KeyValuePair<int, byte[]> d in link.Deliver(now))
                    {
                        if (d.Key == 0)
                        {
                            Assert.AreEqual(0, kcp.Input(d.Value, 0, d.Value.Length, (uint)now), "a datagram of ikcp.c");
                            kcp.Flush((uint)now);
                            Drain(kcp, link, now);
                        }
                        else
                        {
                            foreach (byte[] o in peer.Input(now, d.Value)) link.Send(1, o, now);
                        }
                    }
                    byte[] echo;
                    while ((echo = kcp.Receive()) != null) echoes.Add(echo);
                }
                Assert.That(link.Dropped, Is.GreaterThan(link.Sent / 20), "the link really lost datagrams");
                Assert.AreEqual(sent.Count, peer.Received.Count, "ikcp.c received every message (t = " + now + " ms)");
                Assert.AreEqual(sent.Count, echoes.Count, "every echo came back");
                for (int i = 0; i < sent.Count; i++)
                {
                    CollectionAssert.AreEqual(sent[i], peer.Received[i], "message " + i + " at ikcp.c");
                    CollectionAssert.AreEqual(sent[i], echoes[i], "echo " + i);
                }
            }
        }

        private static void Drain(Kcp kcp, LossyLink link, long now)
        {
            byte[] d;
            while ((d = kcp.NextDatagram()) != null) link.Send(0, d, now);
        }

        /// <summary>kcp_peer.py as a child process, one command per line.</summary>
        private sealed class ReferencePeer : IDisposable
        {
            public readonly List<byte[]> Received = new List<byte[]>();
            private readonly Process process;

            private ReferencePeer(Process process)
            {
                this.process = process;
            }

            public static ReferencePeer Start(string script, uint conv)
            {
                var probe = Run("python3", "-c \"import kcp\"");
                if (probe != 0) Assert.Ignore("python3 with PyPI's kcp is missing (pip install kcp==0.1.6): no interop test");
                var info = new ProcessStartInfo("python3", "\"" + script + "\" " + conv)
                {
                    UseShellExecute = false,
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                };
                return new ReferencePeer(Process.Start(info));
            }

            private static int Run(string file, string args)
            {
                try
                {
                    var info = new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardError = true };
                    using (Process p = Process.Start(info))
                    {
                        p.StandardError.ReadToEnd();
                        p.WaitForExit();
                        return p.ExitCode;
                    }
                }
                catch (System.ComponentModel.Win32Exception)
                {
                    return -1;
                }
            }

            public List<byte[]> Tick(long now)
            {
                return Command("tick " + now);
            }

            public List<byte[]> Input(long now, byte[] d)
            {
                return Command("in " + now + " " + KcpTests.Hex(d));
            }

            private List<byte[]> Command(string line)
            {
                process.StandardInput.WriteLine(line);
                process.StandardInput.Flush();
                var outs = new List<byte[]>();
                while (true)
                {
                    string reply = process.StandardOutput.ReadLine();
                    if (reply == null) Assert.Fail("kcp_peer.py ended");
                    if (reply == "end") return outs;
                    if (reply.StartsWith("out ")) outs.Add(FromHex(reply.Substring(4)));
                    else if (reply.StartsWith("msg ")) Received.Add(FromHex(reply.Substring(4)));
                }
            }

            private static byte[] FromHex(string hex)
            {
                var b = new byte[hex.Length / 2];
                for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
                return b;
            }

            public void Dispose()
            {
                try
                {
                    process.StandardInput.Close();
                    if (!process.WaitForExit(5000)) process.Kill();
                }
                catch (InvalidOperationException)
                {
                }
                process.Dispose();
            }
        }
    }
}
