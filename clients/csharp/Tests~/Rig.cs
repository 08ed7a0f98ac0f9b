using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>A <see cref="GameSessionCore"/> plus a fake clock and the output collected so far, for the state machine tests.</summary>
    internal sealed class Rig
    {
        public long Now = 1000000;
        public readonly GameSessionCore Core;
        public readonly List<GameEvent> Events = new List<GameEvent>();
        public readonly List<SessionCommand> Commands = new List<SessionCommand>();

        public Rig(GameSessionOptions options = null, bool canRefresh = false, bool connected = true)
        {
            Core = new GameSessionCore(options ?? new GameSessionOptions(), canRefresh);
            if (connected) Core.OnConnected(Now);
            Collect();
        }

        public void Collect()
        {
            GameEvent ev;
            while (Core.TryGetEvent(out ev)) Events.Add(ev);
            SessionCommand c;
            while (Core.TryGetCommand(out c)) Commands.Add(c);
        }

        public void Advance(long ms)
        {
            Now += ms;
            Core.Tick(Now);
            Collect();
        }

        /// <summary>Ticks at every deadline until <paramref name="ms"/> have passed, as the shell would.</summary>
        public void RunFor(long ms)
        {
            long until = Now + ms;
            while (true)
            {
                long next = Core.NextDeadline;
                if (next > until) break;
                Now = Math.Max(Now, next);
                Core.Tick(Now);
                Collect();
            }
            Now = until;
            Core.Tick(Now);
            Collect();
        }

        public void Receive(string json)
        {
            Core.OnMessage(ServerMessageParser.Parse(Encoding.UTF8.GetBytes(json)), Now);
            Collect();
        }

        public void Frame(long n, string actions = "")
        {
            Receive("{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":" + n + ",\"actions\":[" + actions + "]}}");
        }

        public void Reload(long start, long end, bool last, params long[] frames)
        {
            string list = string.Join(",", frames.Select(n => "{\"frame_count\":" + n + ",\"actions\":[]}").ToArray());
            Receive("{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":" + start + ",\"end_frame\":" + end +
                ",\"last\":" + (last ? "true" : "false") + ",\"frames\":[" + list + "]}}");
        }

        public void Error(string code, string proto = null)
        {
            Receive("{\"proto\":\"error\",\"data\":{\"code\":\"" + code + "\",\"message\":\"m\",\"proto\":" +
                (proto == null ? "null" : "\"" + proto + "\"") + "}}");
        }

        public void Start(string room = "r1", double startTime = 1700000000.5)
        {
            Receive("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"" + room + "\",\"start_time\":" +
                startTime.ToString(System.Globalization.CultureInfo.InvariantCulture) +
                ",\"frame_interval_ms\":50,\"members\":[\"1\",\"2\"],\"seed\":7}}");
        }

        public void Lost(MovanException reason = null)
        {
            Core.OnConnectionLost(reason, Now);
            Collect();
        }

        public List<long> Frames()
        {
            return Events.OfType<FrameEvent>().Select(e => e.Frame.FrameCount).ToList();
        }

        public List<SessionCommand> Take(CommandKind kind)
        {
            var found = Commands.Where(c => c.Kind == kind).ToList();
            Commands.RemoveAll(c => c.Kind == kind);
            return found;
        }

        public T Single<T>() where T : GameEvent
        {
            var all = Events.OfType<T>().ToList();
            Assert.AreEqual(1, all.Count, "exactly one " + typeof(T).Name);
            return all[0];
        }
    }

    /// <summary>Helpers of the state machine tests.</summary>
    internal static class Fixtures
    {
        public static List<long> Range(long from, long count)
        {
            var l = new List<long>();
            for (long i = 0; i < count; i++) l.Add(from + i);
            return l;
        }

        public static MovanException Net(string why = "connection reset")
        {
            return new MovanException(ErrorKind.Network, why);
        }
    }
}
