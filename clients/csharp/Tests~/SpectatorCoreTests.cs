using System.Linq;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>A spectator across reconnects, in the state machine with fake time: it watches again by itself.</summary>
    [TestFixture]
    public class SpectatorCoreTests
    {
        private const string RoomState =
            "{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r1\",\"capacity\":4,\"min_players\":2,\"status\":\"playing\",\"members\":[],\"spectators\":1}}";

        /// <summary>The connection drops and the first attempt, 100 ms later, connects.</summary>
        private static void DropAndReconnect(Rig r)
        {
            r.Lost(Fixtures.Net());
            r.RunFor(100);
            Assert.AreEqual(1, r.Take(CommandKind.Connect).Count);
            r.Core.OnConnected(r.Now);
            r.Collect();
        }

        /// <summary>A spectator of r1 that got the game_start and the history 0..<paramref name="frames"/>-1.</summary>
        private static Rig Watching(long frames)
        {
            var r = new Rig();
            r.Core.OnSpectate("r1");
            r.Receive(RoomState);
            r.Start();
            r.Reload(0, frames, true, Fixtures.Range(0, frames).ToArray());
            return r;
        }

        [Test]
        public void After_a_reconnect_it_watches_again_and_every_frame_comes_once_in_order()
        {
            Rig r = Watching(3);
            r.Frame(3);
            r.Frame(4);
            DropAndReconnect(r);
            Assert.AreEqual(5, r.Events.OfType<ReconnectedEvent>().Single().ReloadFrom);
            Assert.AreEqual("r1", r.Take(CommandKind.Spectate).Single().RoomId);
            Assert.AreEqual(0, r.Take(CommandKind.RequestReload).Count, "no seat to reload from: the history comes again");
            // The answer: room_state, the same game_start, the whole history 0..7 in chunks, then live frames.
            r.Receive(RoomState);
            r.Start();
            r.Reload(0, 8, false, 0, 1, 2);
            r.Reload(3, 8, false, 3, 4, 5);
            r.Reload(6, 8, true, 6, 7);
            r.Frame(8);
            CollectionAssert.AreEqual(Fixtures.Range(0, 9), r.Frames());
            Assert.AreEqual(1, r.Events.OfType<GameStartEvent>().Count(), "game_start shown once");
            Assert.AreEqual(6, r.Core.ReloadedFrames, "0..2 and 5..7 came from the histories");
            Assert.AreEqual("r1", r.Core.Watching);
            // And again on the next drop.
            DropAndReconnect(r);
            Assert.AreEqual("r1", r.Take(CommandKind.Spectate).Single().RoomId);
        }

        [TestCase("game_over")]
        [TestCase("room_left")]
        [TestCase("LeaveRoom")]
        public void Watching_ends_and_a_reconnect_does_not_watch_again(string how)
        {
            Rig r = Watching(2);
            if (how == "game_over")
                r.Receive("{\"proto\":\"game_over\",\"data\":{\"room_id\":\"r1\",\"reason\":\"all_left\",\"frame_count\":2,\"results\":null}}");
            else if (how == "room_left")
                r.Receive("{\"proto\":\"room_left\",\"data\":{\"room_id\":\"r1\",\"reason\":\"room_closed\"}}");
            else
                r.Core.OnLeaveRoom();
            Assert.IsNull(r.Core.Watching);
            DropAndReconnect(r);
            Assert.AreEqual(0, r.Take(CommandKind.Spectate).Count);
        }

        [Test]
        public void Room_not_found_after_a_reconnect_forgets_the_game_and_stops_watching()
        {
            Rig r = Watching(2);
            DropAndReconnect(r);
            Assert.AreEqual(1, r.Take(CommandKind.Spectate).Count);
            r.Error("room_not_found", ClientMessages.SpectateProto);
            Assert.AreEqual(ErrorCode.RoomNotFound, r.Single<ErrorEvent>().Error.Code);
            Assert.IsNull(r.Core.Watching);
            Assert.IsNull(r.Core.Game);
            Assert.AreEqual(0, r.Core.NextFrame);
            DropAndReconnect(r);
            Assert.AreEqual(0, r.Take(CommandKind.Spectate).Count);
            Assert.AreEqual(0, r.Take(CommandKind.RequestReload).Count, "no game left to reload");
        }

        [Test]
        public void A_refused_or_unsent_spectate_keeps_what_was_watched_before()
        {
            Rig r = Watching(1);
            r.Core.OnSpectate("r2");
            r.Error("already_in_room", ClientMessages.SpectateProto);
            Assert.AreEqual("r1", r.Core.Watching, "already_in_room: still watching r1");
            r.Core.OnSpectate("r3");
            r.Core.OnSpectateNotSent();
            Assert.AreEqual("r1", r.Core.Watching);
            r.Core.OnSpectate("r4");
            r.Error("room_full", ClientMessages.SpectateProto);
            Assert.IsNull(r.Core.Watching, "any other refusal: not watching");
        }

        [Test]
        public void A_player_still_reloads_after_a_reconnect()
        {
            var r = new Rig();
            r.Start();
            r.Frame(0);
            DropAndReconnect(r);
            Assert.AreEqual(0, r.Take(CommandKind.Spectate).Count);
            Assert.AreEqual(1, r.Take(CommandKind.RequestReload).Single().StartFrame);
        }
    }
}
