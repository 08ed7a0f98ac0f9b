using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests.EndToEnd
{
    /// <summary>
    /// The C# SDK over UDP (KCP) against the real binaries: a game shared with Rust bots over TCP, a takeover that
    /// reloads the whole game over UDP, a cut UDP path (reconnect and reload), and an address change (no
    /// reconnect). Games last 12 s, long enough for a dead link (about 5 s) to be noticed mid-game.
    /// </summary>
    [TestFixture]
    [Category("EndToEnd")]
    public class UdpEndToEndTests
    {
        private const int GameSecs = 12;
        private const int GameFrames = GameSecs * 1000 / 50;
        private static readonly TimeSpan BotTimeout = TimeSpan.FromSeconds(90);
        private Cluster cluster;
        private string work;

        [TestFixtureSetUp]
        public void StartCluster()
        {
            cluster = new Cluster("max_game_secs = " + GameSecs);
            work = Path.Combine(cluster.Dir, "bots");
            Directory.CreateDirectory(work);
        }

        [TestFixtureTearDown]
        public void StopCluster()
        {
            if (cluster != null) cluster.Dispose();
        }

        private static string CsBot
        {
            get
            {
                string p = Environment.GetEnvironmentVariable("MOVAN_CS_BOT");
                if (string.IsNullOrEmpty(p)) throw new InvalidOperationException("MOVAN_CS_BOT is not set: run clients/csharp/test.sh");
                return p;
            }
        }

        /// <summary>The game arguments both bots take; <paramref name="extra"/> adds --bots, --duration-secs and the rest.</summary>
        private string BotArgs(string prefix, int roomSize, string frames, string extra, int actionsPerSec = 10)
        {
            return "--account " + cluster.AccountUrl + " --prefix " + prefix + " --room-size " + roomSize +
                " --actions-per-sec " + actionsPerSec + " --linger-ticks 300 --join-timeout-secs 60 --json" +
                " --frames-out " + Cluster.Quote(Path.Combine(work, frames)) + " " + extra;
        }

        private static JsonValue Finish(ChildProcess bot, string what, bool mustPass = true)
        {
            Assert.IsTrue(bot.WaitForExit(BotTimeout), what + " did not finish:\n" + bot.Stderr);
            string json = bot.StdoutLines.LastOrDefault(l => l.StartsWith("{"));
            Assert.IsNotNull(json, what + " printed no report (exit " + bot.ExitCode + "):\n" + bot.Stderr);
            if (mustPass) Assert.AreEqual(0, bot.ExitCode, what + " failed:\n" + bot.Stderr);
            return JsonValue.Parse(json);
        }

        private Dictionary<int, List<string>> Streams(string file)
        {
            var streams = new Dictionary<int, List<string>>();
            foreach (string line in File.ReadAllLines(Path.Combine(work, file)))
            {
                int tab = line.IndexOf('\t');
                int bot = int.Parse(line.Substring(0, tab));
                List<string> s;
                if (!streams.TryGetValue(bot, out s)) streams[bot] = s = new List<string>();
                s.Add(line.Substring(tab + 1));
            }
            return streams;
        }

        private static void AssertWholeGame(List<string> stream, string who)
        {
            Assert.AreEqual(GameFrames, stream.Count, who + ": every frame of the game");
            for (int i = 0; i < stream.Count; i++)
            {
                Assert.IsTrue(stream[i].StartsWith("{\"frame_count\":" + i + ","), who + " frame " + i + ": " + stream[i]);
            }
        }

        [Test]
        public void A_csharp_bot_over_udp_and_three_rust_bots_over_tcp_get_byte_identical_frame_streams()
        {
            using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"),
                BotArgs("u4", 4, "rust.txt", "--bots 3 --duration-secs 2"), null))
            using (ChildProcess cs = ChildProcess.Start(CsBot,
                BotArgs("csu4", 4, "cs.txt", "--bots 1 --duration-secs 2 --room u4-room-0 --transport udp"), null))
            {
                JsonValue csReport = Finish(cs, "movan-bot-cs over UDP");
                JsonValue rustReport = Finish(rust, "movan-bot");
                Assert.IsTrue(csReport["encrypted"].AsBool());
                Assert.AreEqual(20, csReport["actions_seen_own"].AsInt64(), "every C# action exactly once");
                Assert.AreEqual(0, csReport["reconnects"].AsInt64());
                Assert.AreEqual(60, rustReport["actions_seen_own"].AsInt64());
            }
            Dictionary<int, List<string>> rustStreams = Streams("rust.txt");
            List<string> csStream = Streams("cs.txt")[0];
            Assert.AreEqual(3, rustStreams.Count);
            AssertWholeGame(csStream, "C# over UDP");
            foreach (var kv in rustStreams) CollectionAssert.AreEqual(csStream, kv.Value, "rust bot " + kv.Key + " vs C#");
            Assert.AreEqual(20, csStream.Sum(f => CountOf(f, "\"bot\":0,\"run\":")), "the C# actions are in everyone's frames");
        }

        [Test]
        public void A_takeover_over_udp_reloads_the_whole_game_in_multi_fragment_messages()
        {
            ChildProcess second = null;
            var started = new ManualResetEvent(false);
            Action<string> onLine = line =>
            {
                var m = System.Text.RegularExpressions.Regex.Match(line, @"progress: .* frames=(\d+)");
                if (m.Success && long.Parse(m.Groups[1].Value) >= 100) started.Set();
            };
            try
            {
                // Actions for 10 s make frames of about 100 bytes: the reload of 100+ frames spans several KCP fragments.
                using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"),
                    BotArgs("ur", 2, "rust-r.txt", "--bots 1 --duration-secs 10", 20), null))
                using (ChildProcess first = ChildProcess.Start(CsBot,
                    BotArgs("csur", 2, "cs-first.txt", "--bots 1 --duration-secs 10 --room ur-room-0 --expect-replaced --progress-secs 0.1 --transport udp"), onLine))
                {
                    Assert.IsTrue(started.WaitOne(TimeSpan.FromSeconds(60)), "the first bot did not play 100 frames:\n" + first.Stderr);
                    second = ChildProcess.Start(CsBot, BotArgs("csur", 2, "cs-second.txt", "--bots 1 --duration-secs 2 --rejoin --transport udp"), null);
                    JsonValue a = Finish(first, "the replaced bot");
                    Assert.AreEqual(1, a["replaced"].AsInt64());
                    JsonValue b = Finish(second, "the bot that took over over UDP");
                    Assert.That(b["reloaded_frames"].AsInt64(), Is.GreaterThanOrEqualTo(100), "it joined the game late");
                    Assert.AreEqual(0, b["missing"].AsInt64());
                    Assert.AreEqual(0, b["gaps"].AsInt64());
                    Finish(rust, "movan-bot");
                }
            }
            finally
            {
                if (second != null) second.Dispose();
            }
            List<string> rustStream = Streams("rust-r.txt")[0];
            AssertWholeGame(rustStream, "rust");
            CollectionAssert.AreEqual(rustStream, Streams("cs-second.txt")[0], "reloaded from 0 over UDP, then live");
            Assert.That(rustStream.Take(100).Sum(f => f.Length), Is.GreaterThan(4 * 1376), "the reload was several fragments");
        }

        [Test]
        public void A_cut_udp_path_ends_in_a_dead_link_then_a_reconnect_and_reload_with_no_frame_lost()
        {
            using (var proxy = new UdpProxy(cluster.SyncUdpAddr))
            {
                int cuts = 0;
                Action<string> onLine = line =>
                {
                    if (!line.Contains("game started")) return;
                    ThreadPool.QueueUserWorkItem(_ =>
                    {
                        Thread.Sleep(1000);
                        Interlocked.Add(ref cuts, proxy.CutAll());
                    });
                };
                using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"),
                    BotArgs("uc", 4, "rust-c.txt", "--bots 3 --duration-secs 8"), null))
                using (ChildProcess cs = ChildProcess.Start(CsBot,
                    BotArgs("csuc", 4, "cs-c.txt", "--bots 1 --duration-secs 8 --room uc-room-0 --transport udp --sync " + proxy.Address), onLine))
                {
                    JsonValue r = Finish(cs, "movan-bot-cs", false);
                    Console.WriteLine("UDP cut test, the C# bot's report: " + r);
                    Finish(rust, "movan-bot");
                    Assert.AreEqual(1, Volatile.Read(ref cuts), "one path was cut:\n" + cs.Stderr);
                    Assert.AreEqual(2, proxy.Paths, "one reconnect, from a new socket");
                    Assert.AreEqual(1, r["reconnects"].AsInt64(), cs.Stderr);
                    Assert.That(r["reloaded_frames"].AsInt64(), Is.GreaterThanOrEqualTo(50), "the 5 s of the outage came by reload");
                    Assert.AreEqual(0, r["gaps"].AsInt64());
                    Assert.AreEqual(0, r["duplicated"].AsInt64());
                    Assert.AreEqual(0, r["desyncs"].AsInt64());
                    Assert.AreEqual(0, r["errors"].AsInt64(), cs.Stderr);
                    // Actions sent into the dead path until the dead link (about 5 s at 10/s) are lost, as on any drop.
                    Assert.That(r["missing"].AsInt64(), Is.InRange(1, 70), cs.Stderr);
                }
            }
            List<string> csStream = Streams("cs-c.txt")[0];
            AssertWholeGame(csStream, "C# after a UDP reconnect");
            foreach (var kv in Streams("rust-c.txt")) CollectionAssert.AreEqual(csStream, kv.Value, "rust bot " + kv.Key);
        }

        [Test]
        public void An_address_change_keeps_the_session_with_no_reconnect_and_no_reload()
        {
            using (var proxy = new UdpProxy(cluster.SyncUdpAddr))
            using (var account = new AccountClient(cluster.AccountUrl))
            using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"),
                BotArgs("ua", 2, "rust-a.txt", "--bots 1 --duration-secs 2"), null))
            {
                Session s = account.RegisterOrLoginAsync("cs-rebind", "cs-rebind-pass").Result;
                Assert.IsNotNull(s.SyncUdpAddr);
                Assert.AreEqual(cluster.SyncUdpAddr, s.SyncUdpAddr);
                var options = new GameSessionOptions { Transport = UdpTransport.Factory, SyncAddress = proxy.Address };
                var frames = new List<string>();
                using (GameSession game = GameSession.Connect(s, options))
                {
                    Assert.IsTrue(game.IsSealed);
                    game.EnterRoom("ua-room-0");
                    game.Prepare();
                    bool rebound = false;
                    DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                    while (DateTime.UtcNow < deadline)
                    {
                        GameEvent ev = game.NextEvent(TimeSpan.FromMilliseconds(200));
                        Assert.IsFalse(ev is ReconnectingEvent, "no reconnect: " + (ev as ReconnectingEvent)?.Reason);
                        Assert.IsFalse(ev is ClosedEvent, "unexpected end: " + (ev as ClosedEvent)?.Error);
                        var f = ev as FrameEvent;
                        if (f != null)
                        {
                            frames.Add(f.Frame.RawJson);
                            if (frames.Count == 40 && !rebound)
                            {
                                // The old path goes dead at once: only the new address can carry the game on.
                                proxy.CutAll();
                                game.Rebind();
                                rebound = true;
                            }
                        }
                        if (ev is GameOverEvent) break;
                    }
                    Assert.IsTrue(rebound);
                    Assert.AreEqual(2, proxy.Paths, "the session moved to a second address");
                }
                Assert.IsTrue(rust.WaitForExit(BotTimeout), "movan-bot did not finish:\n" + rust.Stderr);
                List<string> rustStream = Streams("rust-a.txt")[0];
                AssertWholeGame(rustStream, "rust");
                CollectionAssert.AreEqual(rustStream, frames, "every frame, live, across the address change");
            }
        }

        [Test]
        public void An_idle_udp_session_lives_on_its_window_probes_which_the_server_answers()
        {
            using (var account = new AccountClient(cluster.AccountUrl))
            {
                Session s = account.RegisterOrLoginAsync("cs-idle", "cs-idle-pass").Result;
                SyncConnectOptions o = SyncConnectOptions.ForUdp(s);
                // A probe every 300 ms, and the session ends after 1 s without a datagram: only the server's answers keep it.
                o.Transport = UdpTransport.FactoryWith(new UdpTransportOptions
                {
                    Keepalive = TimeSpan.FromMilliseconds(300),
                    SilenceTimeout = TimeSpan.FromSeconds(1),
                });
                using (SyncConnection c = SyncConnection.Connect(o))
                {
                    Assert.IsTrue(c.IsSealed);
                    Thread.Sleep(4000);
                    Assert.IsTrue(c.IsOpen, "still open after 4 s idle: " + c.CloseReason);
                    c.Ping();
                    Assert.IsInstanceOf<Pong>(c.WaitFor(m => m is Pong, TimeSpan.FromSeconds(5)));
                }
            }
        }

        private static int CountOf(string s, string part)
        {
            int n = 0;
            for (int i = s.IndexOf(part, StringComparison.Ordinal); i >= 0; i = s.IndexOf(part, i + 1, StringComparison.Ordinal)) n++;
            return n;
        }
    }
}
