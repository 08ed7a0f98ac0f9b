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
    /// The C# SDK against the real binaries: games shared with Rust bots (<c>movan-bot</c>), a cut connection, a
    /// takeover that reloads the whole game, and the account API. Needs <c>MOVAN_BIN_DIR</c> and
    /// <c>MOVAN_CS_BOT</c> (clients/csharp/test.sh sets both).
    /// </summary>
    [TestFixture]
    [Category("EndToEnd")]
    public class EndToEndTests
    {
        /// <summary>Games end after 6 s: 120 frames at the default 50 ms.</summary>
        private const int GameSecs = 6;
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

        /// <summary>Both bots take the same game arguments; they send for 2 s and linger until the game is over.</summary>
        private string BotArgs(string prefix, int roomSize, string frames, string extra = "")
        {
            return "--account " + cluster.AccountUrl + " --prefix " + prefix + " --room-size " + roomSize +
                " --duration-secs 2 --actions-per-sec 10 --linger-ticks 200 --join-timeout-secs 60 --json" +
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

        /// <summary>Every bot's frames in the file: index → frame lines in order.</summary>
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
        public void A_csharp_bot_and_three_rust_bots_get_byte_identical_frame_streams()
        {
            using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"), BotArgs("e2e", 4, "rust.txt", "--bots 3"), null))
            using (ChildProcess cs = ChildProcess.Start(CsBot, BotArgs("cs4", 4, "cs.txt", "--bots 1 --room e2e-room-0"), null))
            {
                JsonValue csReport = Finish(cs, "movan-bot-cs");
                JsonValue rustReport = Finish(rust, "movan-bot");
                Assert.IsTrue(csReport["encrypted"].AsBool());
                Assert.AreEqual(20, csReport["actions_seen_own"].AsInt64(), "every C# action exactly once");
                Assert.AreEqual(60, rustReport["actions_seen_own"].AsInt64());
            }
            Dictionary<int, List<string>> rustStreams = Streams("rust.txt");
            List<string> csStream = Streams("cs.txt")[0];
            Assert.AreEqual(3, rustStreams.Count);
            AssertWholeGame(csStream, "C#");
            foreach (var kv in rustStreams) CollectionAssert.AreEqual(csStream, kv.Value, "rust bot " + kv.Key + " vs C#");
            // The C# actions are in the frames the Rust bots hold: the four clients really shared one game.
            Assert.AreEqual(20, csStream.Sum(f => CountOf(f, "\"bot\":0,\"run\":")));
        }

        [Test]
        public void A_cut_connection_reconnects_reloads_and_misses_no_frame()
        {
            using (var proxy = new TcpProxy(cluster.SyncAddr))
            {
                int cuts = 0;
                Action<string> onLine = line =>
                {
                    if (!line.Contains("game started")) return;
                    // One second into the game, cut the C# player's connection.
                    ThreadPool.QueueUserWorkItem(_ =>
                    {
                        Thread.Sleep(1000);
                        Interlocked.Add(ref cuts, proxy.CutAll());
                    });
                };
                using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"), BotArgs("e2c", 4, "rust-c.txt", "--bots 3"), null))
                using (ChildProcess cs = ChildProcess.Start(CsBot,
                    BotArgs("csc", 4, "cs-c.txt", "--bots 1 --room e2c-room-0 --sync " + proxy.Address), onLine))
                {
                    JsonValue r = Finish(cs, "movan-bot-cs", false);
                    Console.WriteLine("reconnect test, the C# bot's report: " + r);
                    Finish(rust, "movan-bot");
                    Assert.AreEqual(1, Volatile.Read(ref cuts), "one connection was cut:\n" + cs.Stderr);
                    Assert.AreEqual(2, proxy.Accepted, "one reconnect through the proxy");
                    Assert.AreEqual(1, r["reconnects"].AsInt64(), cs.Stderr);
                    Assert.That(r["reloaded_frames"].AsInt64(), Is.GreaterThanOrEqualTo(1), "the frames of the outage came by reload");
                    Assert.AreEqual(0, r["gaps"].AsInt64());
                    Assert.AreEqual(0, r["duplicated"].AsInt64());
                    Assert.AreEqual(0, r["desyncs"].AsInt64());
                    Assert.AreEqual(0, r["errors"].AsInt64(), cs.Stderr);
                    // Actions written into the dying connection are lost, as on any drop; at 10/s that is at most a couple.
                    Assert.That(r["missing"].AsInt64(), Is.LessThanOrEqualTo(2), cs.Stderr);
                }
            }
            List<string> csStream = Streams("cs-c.txt")[0];
            AssertWholeGame(csStream, "C# after a reconnect");
            foreach (var kv in Streams("rust-c.txt")) CollectionAssert.AreEqual(csStream, kv.Value, "rust bot " + kv.Key);
        }

        [Test]
        public void A_second_process_takes_over_reloads_the_whole_game_and_the_first_does_not_come_back()
        {
            ChildProcess second = null;
            var started = new ManualResetEvent(false);
            // The takeover starts once the first bot has played at least 10 frames (its progress line every 0.1 s
            // counts them), so the replaced stream always holds a real part of the game, however fast the second
            // process starts.
            Action<string> onLine = line =>
            {
                var m = System.Text.RegularExpressions.Regex.Match(line, @"progress: .* frames=(\d+)");
                if (m.Success && long.Parse(m.Groups[1].Value) >= 10) started.Set();
            };
            try
            {
                using (ChildProcess rust = ChildProcess.Start(Cluster.Bin("movan-bot"), BotArgs("e2r", 2, "rust-r.txt", "--bots 1"), null))
                using (ChildProcess first = ChildProcess.Start(CsBot,
                    BotArgs("csr", 2, "cs-first.txt", "--bots 1 --room e2r-room-0 --expect-replaced --progress-secs 0.1"), onLine))
                {
                    Assert.IsTrue(started.WaitOne(TimeSpan.FromSeconds(60)), "the first bot did not play 10 frames:\n" + first.Stderr);
                    // Same account, new process (it takes a second or so to start and log in): the server replaces the first connection and rebinds the seat.
                    second = ChildProcess.Start(CsBot, BotArgs("csr", 2, "cs-second.txt", "--bots 1 --rejoin"), null);
                    JsonValue a = Finish(first, "the replaced bot");
                    Assert.AreEqual(1, a["replaced"].AsInt64());
                    Assert.AreEqual(0, a["reconnects"].AsInt64(), "no coming back after replaced");
                    JsonValue b = Finish(second, "the bot that took over");
                    Assert.That(b["reloaded_frames"].AsInt64(), Is.GreaterThanOrEqualTo(5), "it joined the game late");
                    Assert.AreEqual(0, b["missing"].AsInt64());
                    Finish(rust, "movan-bot");
                }
            }
            finally
            {
                if (second != null) second.Dispose();
            }
            List<string> rustStream = Streams("rust-r.txt")[0];
            AssertWholeGame(rustStream, "rust");
            CollectionAssert.AreEqual(rustStream, Streams("cs-second.txt")[0], "reloaded from 0, then live");
            List<string> firstStream = Streams("cs-first.txt")[0];
            Assert.That(firstStream.Count, Is.InRange(10, GameFrames - 30), "replaced well before the end");
            CollectionAssert.AreEqual(rustStream.Take(firstStream.Count).ToList(), firstStream, "a prefix until it was replaced");
        }

        [Test]
        public void A_logout_closes_the_session_with_session_revoked_and_it_does_not_come_back()
        {
            using (var account = new AccountClient(cluster.AccountUrl))
            {
                Session s = account.RegisterOrLoginAsync("cs-logout", "cs-logout-pass").Result;
                using (GameSession game = GameSession.Connect(s, new GameSessionOptions { Account = account }))
                {
                    Assert.IsTrue(game.IsSealed);
                    game.EnterRoom("cs-logout-room");
                    var state = Next<RoomStateEvent>(game);
                    Assert.AreEqual("cs-logout-room", state.State.RoomId);
                    game.Ping();
                    var pong = Next<PongEvent>(game);
                    Assert.That(pong.Pong.RoundTrip.Value, Is.InRange(0.0, 5.0));
                    account.LogoutAsync(s.Token).Wait();
                    var closed = Next<ClosedEvent>(game);
                    Assert.AreEqual("session_revoked", closed.Error.Code);
                    Assert.AreEqual(ErrorCode.SessionRevoked, closed.Error.SyncCode);
                    Assert.IsTrue(game.IsClosed);
                    Assert.IsNull(game.NextEvent(TimeSpan.FromMilliseconds(200)), "nothing after Closed");
                    var e = Assert.Throws<MovanException>(() => game.SendAction("{}"));
                    Assert.AreEqual(ErrorKind.Closed, e.Kind);
                }
            }
        }

        /// <summary>Waits for the next event of type T; fails on a reconnect or the end meanwhile (unless T is that).</summary>
        private static T Next<T>(GameSession game) where T : GameEvent
        {
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                GameEvent ev = game.NextEvent(TimeSpan.FromMilliseconds(200));
                if (ev is T) return (T)ev;
                Assert.IsFalse(ev is ReconnectingEvent, "unexpected reconnect: " + (ev as ReconnectingEvent)?.Reason);
                Assert.IsFalse(ev is ClosedEvent, "unexpected end: " + (ev as ClosedEvent)?.Error);
            }
            Assert.Fail("no " + typeof(T).Name + " within 20 s");
            return null;
        }

        [Test]
        public void The_account_api_with_its_error_codes()
        {
            using (var account = new AccountClient(cluster.AccountUrl + "/"))
            {
                string uid = account.RegisterAsync("cs-account", "cs-account-pass").Result;
                Assert.That(uid, Is.Not.Empty);
                Assert.AreEqual(409, HttpError(() => account.RegisterAsync("CS-Account", "another-pass").Wait()).HttpStatus);
                MovanException bad = HttpError(() => account.LoginAsync("cs-account", "wrong-password").Wait());
                Assert.AreEqual(401, bad.HttpStatus);
                Assert.AreEqual("invalid_credentials", bad.Code);
                Session s = account.LoginAsync("cs-account", "cs-account-pass").Result;
                Assert.AreEqual(uid, s.Uid);
                Assert.AreEqual(cluster.SyncAddr, s.SyncAddr);
                Assert.AreEqual(32, Convert.FromBase64String(s.SessionKey).Length);
                Assert.That(s.ExpiresIn, Is.GreaterThan(0));
                Me me = account.MeAsync(s.Token).Result;
                Assert.AreEqual("cs-account", me.Username);
                Assert.AreEqual("player", me.Role);
                MatchPage page = account.MatchesAsync(s.Token, 5).Result;
                Assert.AreEqual(0, page.Matches.Count);
                Assert.IsNull(page.Next);
                Session next = account.RefreshAsync(s.RefreshToken).Result;
                Assert.AreNotEqual(s.RefreshToken, next.RefreshToken);
                Assert.AreEqual(s.SessionKey, next.SessionKey, "a refresh keeps the session");
                Assert.AreEqual("bad_request", HttpError(() => account.MatchesAsync(next.Token, 0).Wait()).Code, "limit 1..100");
                Assert.AreEqual("invalid_refresh_token", HttpError(() => account.RefreshAsync(s.RefreshToken).Wait()).Code, "single use");
                // Reusing a spent refresh token ends the whole session (protocol.md §3): the newer tokens are dead too.
                Assert.AreEqual("unauthorized", HttpError(() => account.MeAsync(next.Token).Wait()).Code, "reuse revokes the session");
                Assert.AreEqual("invalid_refresh_token", HttpError(() => account.RefreshAsync(next.RefreshToken).Wait()).Code);
                Session fresh = account.LoginAsync("cs-account", "cs-account-pass").Result;
                account.LogoutAsync(fresh.Token).Wait();
                MovanException gone = HttpError(() => account.MeAsync(fresh.Token).Wait());
                Assert.AreEqual(401, gone.HttpStatus);
                Assert.AreEqual("unauthorized", gone.Code);
            }
            using (var nowhere = new AccountClient("http://127.0.0.1:1"))
            {
                MovanException e = HttpError(() => nowhere.LoginAsync("x", "y").Wait());
                Assert.AreEqual(ErrorKind.Network, e.Kind);
            }
        }

        private static MovanException HttpError(TestDelegate call)
        {
            var agg = Assert.Throws<AggregateException>(call);
            var e = agg.GetBaseException() as MovanException;
            Assert.IsNotNull(e, "expected a MovanException, got " + agg.GetBaseException());
            return e;
        }

        private static int CountOf(string s, string part)
        {
            int n = 0;
            for (int i = s.IndexOf(part, StringComparison.Ordinal); i >= 0; i = s.IndexOf(part, i + 1, StringComparison.Ordinal)) n++;
            return n;
        }
    }
}
