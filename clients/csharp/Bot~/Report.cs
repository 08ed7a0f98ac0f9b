using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Movan.Client;

namespace Movan.Bot
{
    /// <summary>What a run saw; field names follow <c>movan-bot</c>'s JSON report.</summary>
    internal sealed class Report
    {
        public int Bots, Rooms, Reconnects, Replaced;
        public long FramesReceived, ActionsSent, ActionsSeenOwn, Missing, Duplicated, Gaps, Desyncs, Errors;
        public long SendFailures, ReloadedFrames;
        public bool Encrypted;
        public List<string> ErrorMessages = new List<string>();

        public static Report Of(BotState[] bots)
        {
            var r = new Report { Bots = bots.Length };
            foreach (BotState b in bots)
            {
                r.FramesReceived += b.Frames.Count;
                r.ActionsSent += b.Sent;
                r.ActionsSeenOwn += b.Seen.Values.Sum();
                for (long seq = 0; seq < b.Sent; seq++)
                {
                    if (!b.Seen.ContainsKey(seq)) r.Missing++;
                }
                r.Duplicated += b.Seen.Values.Count(n => n > 1);
                r.Gaps += b.Gaps;
                r.Errors += b.ErrorCount + (b.UnknownSeq > 0 ? 1 : 0);
                if (b.UnknownSeq > 0) r.ErrorMessages.Add("bot " + b.Index + ": " + b.UnknownSeq + " own actions seen that were never sent");
                foreach (string m in b.Errors)
                {
                    if (r.ErrorMessages.Count < 50) r.ErrorMessages.Add(m);
                }
                r.Reconnects += b.Reconnects;
                r.Replaced += b.Replaced ? 1 : 0;
                r.SendFailures += b.SendFailures;
                if (b.Session != null) r.ReloadedFrames += b.Session.ReloadedFrames;
            }
            var connected = bots.Where(b => b.Session != null).ToList();
            r.Encrypted = connected.Count > 0 && connected.All(b => b.Session.IsSealed);
            var rooms = bots.Where(b => b.RoomId != null).GroupBy(b => b.RoomId).ToList();
            r.Rooms = rooms.Count;
            foreach (var room in rooms)
            {
                // Every member against the one holding the most frames.
                BotState reference = room.OrderByDescending(b => b.Frames.Count).First();
                foreach (BotState b in room)
                {
                    for (int i = 0; i < b.Frames.Count; i++)
                    {
                        if (!b.Frames[i].SequenceEqual(reference.Frames[i])) r.Desyncs++;
                    }
                }
            }
            return r;
        }

        public bool Passed(Config config)
        {
            if (config.ExpectReplaced)
            {
                // The server drops what the old connection sends once it is replaced: missing actions are expected.
                return Replaced == Bots && Reconnects == 0 && Duplicated == 0 && Gaps == 0 && Desyncs == 0 && Errors == 0;
            }
            return Missing == 0 && Duplicated == 0 && Gaps == 0 && Desyncs == 0 && Errors == 0 && FramesReceived > 0;
        }

        public string Summary(Config c)
        {
            var sb = new StringBuilder();
            sb.AppendFormat(CultureInfo.InvariantCulture, "movan-bot-cs: {0} bots in {1} rooms, {2:F1} s at {3} actions/s each\n",
                Bots, Rooms, c.DurationSecs, c.ActionsPerSec);
            sb.AppendFormat("frames received {0}, actions sent {1}, own actions seen {2}\n", FramesReceived, ActionsSent, ActionsSeenOwn);
            sb.AppendFormat("missing {0}, duplicated {1}, gaps {2}, desyncs {3}, errors {4}\n", Missing, Duplicated, Gaps, Desyncs, Errors);
            sb.AppendFormat("reconnects {0}, reloaded frames {1}, sends refused while reconnecting {2}, replaced {3}\n",
                Reconnects, ReloadedFrames, SendFailures, Replaced);
            sb.AppendFormat("encrypted {0}\n", Encrypted ? "yes (chacha20poly1305)" : "no");
            foreach (string m in ErrorMessages) sb.Append("  error: ").Append(m).Append('\n');
            sb.Append(Passed(c) ? "PASS\n" : "FAIL\n");
            return sb.ToString();
        }

        public string ToJson()
        {
            JsonValue messages = JsonValue.NewArray();
            foreach (string m in ErrorMessages) messages.Add(JsonValue.From(m));
            return JsonValue.NewObject()
                .Add("bots", Bots).Add("rooms", Rooms).Add("frames_received", FramesReceived)
                .Add("actions_sent", ActionsSent).Add("actions_seen_own", ActionsSeenOwn).Add("missing", Missing)
                .Add("duplicated", Duplicated).Add("gaps", Gaps).Add("desyncs", Desyncs).Add("errors", Errors)
                .Add("error_messages", messages).Add("encrypted", Encrypted).Add("reconnects", Reconnects)
                .Add("reloaded_frames", ReloadedFrames).Add("send_failures", SendFailures).Add("replaced", Replaced)
                .Add("gc_nursery", GC.CollectionCount(0)).Add("gc_major", GC.CollectionCount(1))
                .ToString();
        }
    }
}
