using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>The reconnect and frame-delivery state machine, driven with fake time: no sockets, no sleeps.</summary>
    [TestFixture]
    public class GameSessionCoreTests
    {
        // ---- frames ----

        [Test]
        public void Frames_are_delivered_in_order_and_duplicates_dropped()
        {
            var r = new Rig();
            r.Start();
            for (int i = 0; i < 5; i++) r.Frame(i);
            r.Frame(3);
            r.Frame(4);
            CollectionAssert.AreEqual(Fixtures.Range(0, 5), r.Frames());
            Assert.AreEqual(5, r.Core.NextFrame);
            Assert.AreEqual(0, r.Commands.Count, "no reload without a gap");
        }

        [Test]
        public void A_gap_asks_for_one_reload_and_the_chunks_fill_it_exactly_once()
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            r.Frame(1);
            r.Frame(4);
            r.Frame(5);
            var reloads = r.Take(CommandKind.RequestReload);
            Assert.AreEqual(1, reloads.Count, "one reload in flight");
            Assert.AreEqual(2, reloads[0].StartFrame);
            Assert.AreEqual(2, r.Core.BufferedFrames);
            // A live frame may arrive before the first chunk; the chunks overlap what is buffered.
            r.Frame(6);
            r.Reload(2, 6, false, 2, 3);
            r.Reload(4, 6, true, 4, 5);
            CollectionAssert.AreEqual(Fixtures.Range(0, 7), r.Frames());
            Assert.AreEqual(0, r.Core.BufferedFrames);
            Assert.AreEqual(0, r.Commands.Count);
        }

        [Test]
        public void A_reload_that_makes_progress_but_leaves_a_gap_asks_again()
        {
            var r = new Rig(new GameSessionOptions { MaxBufferedFrames = 2 });
            r.Start();
            r.Frame(0);
            for (int i = 3; i < 8; i++) r.Frame(i); // only 3 and 4 fit the buffer
            Assert.AreEqual(1, r.Take(CommandKind.RequestReload).Count);
            r.Reload(1, 6, true, 1, 2, 3, 4, 5);
            var again = r.Take(CommandKind.RequestReload);
            CollectionAssert.AreEqual(Fixtures.Range(0, 6), r.Frames());
            Assert.AreEqual(0, again.Count, "no gap left: 6 and 7 were dropped from the full buffer, 8 will come live");
            r.Frame(8);
            Assert.AreEqual(6, r.Take(CommandKind.RequestReload).Single().StartFrame);
            r.Reload(6, 9, true, 6, 7, 8);
            CollectionAssert.AreEqual(Fixtures.Range(0, 9), r.Frames());
        }

        [Test]
        public void A_reload_that_times_out_skips_the_gap_with_an_error()
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            r.Frame(3);
            Assert.AreEqual(1, r.Take(CommandKind.RequestReload).Count);
            r.RunFor(29000);
            Assert.AreEqual(0, r.Events.OfType<ErrorEvent>().Count());
            r.Frame(4); // keeps the connection alive meanwhile
            r.RunFor(2000);
            var err = r.Single<ErrorEvent>();
            Assert.AreEqual("timeout", err.Error.CodeText);
            StringAssert.Contains("frames 1..3 are missing", err.Error.Message);
            CollectionAssert.AreEqual(new long[] { 0, 3, 4 }, r.Frames());
        }

        [Test]
        public void History_expired_skips_the_gap_and_not_in_room_ends_the_game()
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            r.Frame(5);
            r.Take(CommandKind.RequestReload);
            r.Error("history_expired", ClientMessages.ReloadProto);
            CollectionAssert.AreEqual(new long[] { 0, 5 }, r.Frames());
            Assert.AreEqual("history_expired", r.Single<ErrorEvent>().Error.CodeText);

            var q = new Rig();
            q.Start();
            q.Frame(0);
            q.Frame(2);
            q.Error("not_in_room", ClientMessages.ReloadProto);
            Assert.IsNull(q.Core.Game);
            Assert.AreEqual(0, q.Core.NextFrame);
            Assert.AreEqual(0, q.Core.BufferedFrames);
        }

        [Test]
        public void A_new_game_restarts_at_frame_0_and_a_repeated_game_start_is_not_shown()
        {
            var r = new Rig();
            r.Start("r1");
            r.Frame(0);
            r.Frame(1);
            r.Start("r1");
            r.Frame(2);
            Assert.AreEqual(1, r.Events.OfType<GameStartEvent>().Count());
            r.Receive("{\"proto\":\"game_over\",\"data\":{\"room_id\":\"r1\",\"reason\":\"max_duration\",\"frame_count\":3,\"results\":null}}");
            Assert.IsNull(r.Core.Game);
            r.Start("r2", 1700000100);
            r.Frame(0);
            Assert.AreEqual(2, r.Events.OfType<GameStartEvent>().Count());
            CollectionAssert.AreEqual(new long[] { 0, 1, 2, 0 }, r.Frames());
            Assert.IsInstanceOf<GameOverEvent>(r.Events[r.Events.Count - 3]);
        }

        [Test]
        public void Other_messages_pass_through_in_order()
        {
            var r = new Rig();
            r.Receive("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":4,\"min_players\":2,\"status\":\"waiting\",\"members\":[]}}");
            r.Receive("{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":2.0}}");
            r.Error("room_full", "room_enter");
            r.Receive("{\"proto\":\"room_left\",\"data\":{\"room_id\":\"r\"}}");
            Assert.IsInstanceOf<RoomStateEvent>(r.Events[0]);
            Assert.IsInstanceOf<PongEvent>(r.Events[1]);
            Assert.AreEqual(ErrorCode.RoomFull, ((ErrorEvent)r.Events[2]).Error.Code);
            Assert.AreEqual("r", ((RoomLeftEvent)r.Events[3]).Left.RoomId);
        }

        // ---- reconnects ----

        [Test]
        public void A_drop_reconnects_with_doubling_backoff_capped_at_the_max()
        {
            var r = new Rig();
            r.Lost(Fixtures.Net());
            Assert.AreEqual(1, r.Single<ReconnectingEvent>().Attempt);
            Assert.IsTrue(r.Core.IsReconnecting);
            var attemptsAt = new List<long>();
            long dropAt = r.Now;
            for (int i = 0; i < 7; i++)
            {
                r.RunFor(r.Core.NextDeadline - r.Now);
                Assert.AreEqual(1, r.Take(CommandKind.Connect).Count, "attempt " + (i + 1));
                attemptsAt.Add(r.Now - dropAt);
                r.Core.OnConnectFailed(Fixtures.Net("refused"), r.Now);
                r.Collect();
            }
            // Waits of 100, 200, 400, 800, 1600, 2000, 2000 ms.
            CollectionAssert.AreEqual(new long[] { 100, 300, 700, 1500, 3100, 5100, 7100 }, attemptsAt);
            CollectionAssert.AreEqual(Enumerable.Range(1, 8).ToList(),
                r.Events.OfType<ReconnectingEvent>().Select(e => e.Attempt).ToList());
            Assert.IsFalse(r.Core.IsClosed);
        }

        [Test]
        public void No_attempt_is_made_before_its_delay()
        {
            var r = new Rig();
            r.Lost(Fixtures.Net());
            r.Advance(99);
            Assert.AreEqual(0, r.Take(CommandKind.Connect).Count);
            r.Advance(1);
            Assert.AreEqual(1, r.Take(CommandKind.Connect).Count);
            r.Advance(10000);
            Assert.AreEqual(0, r.Take(CommandKind.Connect).Count, "one attempt at a time");
        }

        [Test]
        public void Reconnecting_gives_up_after_the_grace()
        {
            var r = new Rig(new GameSessionOptions { Policy = new ReconnectPolicy { GiveUpAfter = TimeSpan.FromSeconds(5) } });
            r.Lost(Fixtures.Net());
            int attempts = 0;
            while (!r.Core.IsClosed && attempts < 100)
            {
                r.RunFor(r.Core.NextDeadline - r.Now);
                attempts += r.Take(CommandKind.Connect).Count;
                r.Core.OnConnectFailed(Fixtures.Net("refused #" + attempts), r.Now);
                r.Collect();
            }
            Assert.IsTrue(r.Core.IsClosed);
            Assert.AreEqual(5000, r.Now - 1000000, "the last attempt is made when the grace ends");
            Assert.AreEqual(6, attempts, "at 100, 300, 700, 1500, 3100 and 5000 ms");
            var closed = r.Single<ClosedEvent>();
            StringAssert.Contains("refused #6", closed.Error.Message);
            Assert.AreEqual(long.MaxValue, r.Core.NextDeadline);
        }

        [Test]
        public void A_reconnect_reloads_from_the_next_frame_and_delivers_every_frame_once()
        {
            var r = new Rig();
            r.Start();
            for (int i = 0; i < 10; i++) r.Frame(i);
            r.Lost(Fixtures.Net());
            r.RunFor(100);
            r.Take(CommandKind.Connect);
            r.Core.OnConnected(r.Now);
            r.Collect();
            var back = r.Single<ReconnectedEvent>();
            Assert.AreEqual(10, back.ReloadFrom);
            Assert.AreEqual(1, back.Attempts);
            Assert.AreEqual(10, r.Take(CommandKind.RequestReload).Single().StartFrame);
            // The rebind brings room_state and the same game_start; live frames may beat the reload.
            r.Start();
            r.Frame(14);
            r.Frame(15);
            r.Reload(10, 15, true, 10, 11, 12, 13, 14);
            r.Frame(16);
            CollectionAssert.AreEqual(Fixtures.Range(0, 17), r.Frames());
            Assert.AreEqual(1, r.Events.OfType<GameStartEvent>().Count());
        }

        [Test]
        public void A_reconnect_outside_a_game_does_not_reload()
        {
            var r = new Rig();
            r.Lost(null);
            StringAssert.Contains("closed by the server", r.Single<ReconnectingEvent>().Reason);
            r.RunFor(100);
            r.Core.OnConnected(r.Now);
            r.Collect();
            Assert.AreEqual(-1, r.Single<ReconnectedEvent>().ReloadFrom);
            Assert.AreEqual(0, r.Take(CommandKind.RequestReload).Count);
        }

        [TestCase("replaced")]
        [TestCase("session_revoked")]
        [TestCase("banned")]
        [TestCase("shutting_down")]
        [TestCase("bad_token")]
        [TestCase("uid_mismatch")]
        public void No_coming_back_after_a_final_error(string code)
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            r.Error(code);
            r.Lost(null);
            Assert.IsTrue(r.Core.IsClosed);
            Assert.AreEqual(code, r.Single<ClosedEvent>().Error.Code);
            Assert.AreEqual(0, r.Events.OfType<ReconnectingEvent>().Count());
            r.RunFor(600000);
            Assert.AreEqual(0, r.Take(CommandKind.Connect).Count);
            Assert.IsInstanceOf<ClosedEvent>(r.Events.Last());
        }

        [Test]
        public void Errors_that_do_not_close_on_purpose_still_reconnect()
        {
            foreach (string code in new[] { "timeout", "rate_limited", "internal", "not_in_room" })
            {
                var r = new Rig();
                r.Error(code);
                r.Lost(null);
                Assert.IsFalse(r.Core.IsClosed, code);
                Assert.AreEqual(1, r.Events.OfType<ReconnectingEvent>().Count(), code);
            }
        }

        [Test]
        public void An_old_error_does_not_count_after_a_reconnect()
        {
            var r = new Rig();
            r.Error("replaced");
            r.Core.OnConnectionLost(Fixtures.Net(), r.Now); // this drop ends it
            Assert.IsTrue(r.Core.IsClosed);

            var q = new Rig();
            q.Lost(Fixtures.Net());
            q.RunFor(100);
            q.Core.OnConnected(q.Now);
            q.Lost(Fixtures.Net());
            Assert.IsFalse(q.Core.IsClosed, "no error on this connection");
        }

        [Test]
        public void A_refused_reconnect_ends_the_session()
        {
            foreach (string code in new[] { "session_revoked", "banned", "replaced", "shutting_down" })
            {
                var r = new Rig();
                r.Lost(Fixtures.Net());
                r.RunFor(100);
                r.Core.OnConnectFailed(MovanException.FromServer(new ServerError(code, "no", null)), r.Now);
                r.Collect();
                Assert.IsTrue(r.Core.IsClosed, code);
                Assert.AreEqual(code, r.Single<ClosedEvent>().Error.Code);
            }
            var c = new Rig();
            c.Lost(Fixtures.Net());
            c.RunFor(100);
            c.Core.OnConnectFailed(new MovanException(ErrorKind.Crypto, "bad key"), c.Now);
            c.Collect();
            Assert.IsTrue(c.Core.IsClosed, "a crypto failure");
        }

        [Test]
        public void A_crypto_failure_or_a_disabled_policy_ends_at_the_drop()
        {
            var r = new Rig();
            r.Lost(new MovanException(ErrorKind.Crypto, "bad tag"));
            Assert.AreEqual(ErrorKind.Crypto, r.Single<ClosedEvent>().Error.Kind);

            var q = new Rig(new GameSessionOptions { Policy = ReconnectPolicy.Disabled() });
            q.Lost(null);
            Assert.IsTrue(q.Core.IsClosed);
            Assert.IsNull(q.Single<ClosedEvent>().Error);
        }

        [Test]
        public void Messages_after_a_drop_are_ignored()
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            r.Lost(Fixtures.Net());
            r.Frame(1);
            CollectionAssert.AreEqual(new long[] { 0 }, r.Frames());
        }

        [Test]
        public void Close_by_the_application_ends_without_an_error()
        {
            var r = new Rig();
            r.Lost(Fixtures.Net());
            r.Core.Close(null);
            r.Collect();
            Assert.IsNull(r.Single<ClosedEvent>().Error);
            r.RunFor(10000);
            Assert.AreEqual(0, r.Take(CommandKind.Connect).Count);
            r.Core.OnConnected(r.Now);
            r.Collect();
            Assert.AreEqual(0, r.Events.OfType<ReconnectedEvent>().Count(), "a late connect is ignored");
        }

        // ---- tokens ----

        [Test]
        public void An_expired_token_on_reconnect_is_refreshed_once_then_the_attempt_repeats()
        {
            var r = new Rig(canRefresh: true);
            r.Lost(Fixtures.Net());
            r.RunFor(100);
            r.Take(CommandKind.Connect);
            var expired = MovanException.FromServer(new ServerError("token_expired", "expired", "ping"));
            r.Core.OnConnectFailed(expired, r.Now);
            r.Collect();
            Assert.AreEqual(1, r.Take(CommandKind.Refresh).Count);
            Assert.AreEqual(0, r.Take(CommandKind.Connect).Count);
            var fresh = new Session { Uid = "1", Token = "t2", RefreshToken = "rt2", ExpiresIn = 3600 };
            r.Core.OnRefreshed(fresh, null, r.Now);
            r.Collect();
            Assert.AreSame(fresh, r.Single<SessionRefreshedEvent>().Session);
            Assert.AreEqual(1, r.Take(CommandKind.Connect).Count, "connect again at once with the new token");
            r.Core.OnConnected(r.Now);
            r.Collect();
            Assert.AreEqual(1, r.Single<ReconnectedEvent>().Attempts);
        }

        [Test]
        public void An_expired_token_without_an_account_client_ends_the_session()
        {
            var r = new Rig(canRefresh: false);
            r.Lost(Fixtures.Net());
            r.RunFor(100);
            r.Core.OnConnectFailed(MovanException.FromServer(new ServerError("token_expired", "expired", "ping")), r.Now);
            r.Collect();
            Assert.AreEqual("token_expired", r.Single<ClosedEvent>().Error.Code);
        }

        [Test]
        public void A_refused_refresh_during_a_reconnect_ends_the_session()
        {
            var r = new Rig(canRefresh: true);
            r.Lost(Fixtures.Net());
            r.RunFor(100);
            r.Core.OnConnectFailed(MovanException.FromServer(new ServerError("token_expired", "expired", "ping")), r.Now);
            r.Core.OnRefreshed(null, MovanException.FromHttp(401, "invalid_refresh_token", "used", null), r.Now);
            r.Collect();
            Assert.AreEqual("invalid_refresh_token", r.Single<ClosedEvent>().Error.Code);
        }

        [Test]
        public void Tokens_are_refreshed_in_the_background_before_they_expire()
        {
            var r = new Rig(canRefresh: true);
            r.Core.OnSessionIssued(3600, r.Now);
            r.Frame(0); // keep the connection alive with traffic and pings below
            for (int i = 0; i < 330; i++)
            {
                r.RunFor(10000);
                r.Receive("{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":2.0}}");
                if (r.Commands.Any(c => c.Kind == CommandKind.Refresh)) break;
            }
            Assert.AreEqual(1, r.Take(CommandKind.Refresh).Count);
            Assert.AreEqual(3300000, r.Now - 1000000, 10000, "five minutes before expiry");
            // A failure retries after RefreshRetry and tells the application.
            r.Core.OnRefreshed(null, MovanException.FromHttp(503, "no_sync_server", "busy", TimeSpan.FromSeconds(5)), r.Now);
            r.Collect();
            Assert.IsTrue(r.Single<RefreshFailedEvent>().WillRetry);
            r.RunFor(29000);
            Assert.AreEqual(0, r.Take(CommandKind.Refresh).Count);
            r.RunFor(1000);
            Assert.AreEqual(1, r.Take(CommandKind.Refresh).Count);
            r.Core.OnRefreshed(null, MovanException.FromHttp(403, "banned", "banned", null), r.Now);
            r.Collect();
            Assert.IsFalse(r.Events.OfType<RefreshFailedEvent>().Last().WillRetry);
            Assert.IsFalse(r.Core.IsClosed, "the live connection is unaffected");
        }

        [Test]
        public void A_short_token_is_refreshed_at_80_percent()
        {
            var r = new Rig(canRefresh: true);
            r.Core.OnSessionIssued(60, r.Now);
            r.RunFor(47999);
            Assert.AreEqual(0, r.Take(CommandKind.Refresh).Count);
            r.RunFor(1);
            Assert.AreEqual(1, r.Take(CommandKind.Refresh).Count);
        }

        // ---- keepalive and dead connections ----

        [Test]
        public void An_idle_session_pings_every_keepalive()
        {
            var r = new Rig();
            r.RunFor(14999);
            Assert.AreEqual(0, r.Take(CommandKind.Ping).Count);
            r.RunFor(1);
            Assert.AreEqual(1, r.Take(CommandKind.Ping).Count);
            r.Receive("{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":2.0}}");
            r.RunFor(15000);
            Assert.AreEqual(1, r.Take(CommandKind.Ping).Count);
        }

        [Test]
        public void No_pings_while_sending_and_receiving()
        {
            var r = new Rig();
            r.Start();
            for (int i = 0; i < 600; i++)
            {
                r.Advance(50);
                r.Core.OnSent(r.Now);
                r.Frame(i);
            }
            Assert.AreEqual(0, r.Take(CommandKind.Ping).Count);
        }

        [Test]
        public void Sending_without_hearing_back_still_pings()
        {
            var r = new Rig();
            for (int i = 0; i < 16; i++)
            {
                r.Advance(1000);
                r.Core.OnSent(r.Now);
            }
            Assert.AreEqual(1, r.Take(CommandKind.Ping).Count, "quiet for 15 s");
        }

        [Test]
        public void A_silent_connection_is_dropped_and_reconnected()
        {
            var r = new Rig();
            r.RunFor(39999);
            Assert.AreEqual(0, r.Take(CommandKind.Disconnect).Count);
            Assert.AreEqual(2, r.Take(CommandKind.Ping).Count, "pings at 15 s and 30 s went unanswered");
            r.RunFor(1);
            Assert.AreEqual(1, r.Take(CommandKind.Disconnect).Count);
            StringAssert.Contains("nothing from the sync server", r.Single<ReconnectingEvent>().Reason);
            Assert.IsFalse(r.Core.IsConnected);
        }

        [Test]
        public void A_paused_application_is_not_a_dead_connection()
        {
            var r = new Rig();
            for (int i = 0; i < 12; i++)
            {
                r.Advance(5000);
                r.Core.OnStalled(r.Now);
            }
            Assert.AreEqual(0, r.Take(CommandKind.Disconnect).Count);
        }

        [Test]
        public void Next_deadline_covers_every_timer()
        {
            var r = new Rig();
            Assert.AreEqual(r.Now + 15000, r.Core.NextDeadline, "keepalive");
            r.Start();
            r.Frame(0);
            r.Frame(2);
            Assert.AreEqual(r.Now + 15000, r.Core.NextDeadline, "keepalive is sooner than the reload timeout");
            r.Lost(Fixtures.Net());
            Assert.AreEqual(r.Now + 100, r.Core.NextDeadline, "the reconnect attempt");
            r.RunFor(100);
            Assert.AreEqual(long.MaxValue, r.Core.NextDeadline, "connecting: nothing to time");
        }
    }
}
