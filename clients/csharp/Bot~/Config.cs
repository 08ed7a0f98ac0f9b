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
    /// <summary>Command-line options; the names and defaults follow <c>movan-bot</c>.</summary>
    public sealed class Config
    {
        public string Account = Environment.GetEnvironmentVariable("MOVAN_ACCOUNT") ?? "http://127.0.0.1:2026";
        public string Sync = Environment.GetEnvironmentVariable("MOVAN_SYNC");
        public string Transport = "tcp";
        public int Bots = 8;
        public int RoomSize = 4;
        public string Room;
        public double DurationSecs = 10;
        public double ActionsPerSec = 20;
        public string Prefix = "bot";
        public string Password = "movan-bot-pass";
        public bool QuickMatch;
        public double JoinTimeoutSecs = 30;
        public int LingerTicks = 3;
        public string FramesOut;
        public bool Json;
        public double ProgressSecs;
        public bool Rejoin;
        public bool ExpectReplaced;
        public int LoopHz;

        public const string Usage =
            "movan-bot-cs: play games with bots and check lockstep delivery (the C# twin of movan-bot)\n" +
            "  --account URL          account server (default http://127.0.0.1:2026, env MOVAN_ACCOUNT)\n" +
            "  --sync HOST:PORT       sync server instead of the login's sync_addr (env MOVAN_SYNC)\n" +
            "  --transport tcp|udp    tcp (default), or udp: KCP at the login's sync_udp_addr (or --sync)\n" +
            "  --bots N               bots (8)\n" +
            "  --room-size N          members a room needs before its bots get ready (4)\n" +
            "  --room ID              every bot enters this room (default {prefix}-room-{i / room-size})\n" +
            "  --duration-secs S      seconds each bot sends actions once its game started (10)\n" +
            "  --actions-per-sec R    actions per second per bot, open loop (20; 0 = none)\n" +
            "  --prefix P             usernames {prefix}-{i} (bot)\n" +
            "  --password PW          password of every bot account (movan-bot-pass)\n" +
            "  --quick-match          enter rooms by quick match\n" +
            "  --join-timeout-secs S  wait for the room to fill and the game to start (30)\n" +
            "  --linger-ticks N       ticks to keep receiving after the last action (3)\n" +
            "  --frames-out FILE      write every frame, one line each: bot index, a tab, the frame as received\n" +
            "  --json                 print the report as one JSON line on stdout (the summary goes to stderr)\n" +
            "  --progress-secs S      print a progress line on stderr every S seconds\n" +
            "  --loop-hz N            poll every session N times a second, as Update() would (default 0: wake on events)\n" +
            "  --rejoin               do not enter a room: take over a game this account already plays (reload from 0)\n" +
            "  --expect-replaced      the session must end with `replaced` (and never reconnect)\n";

        public static Config Parse(string[] args)
        {
            var c = new Config();
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                if (a == "-h" || a == "--help") return null;
                switch (a)
                {
                    case "--quick-match": c.QuickMatch = true; continue;
                    case "--json": c.Json = true; continue;
                    case "--rejoin": c.Rejoin = true; continue;
                    case "--expect-replaced": c.ExpectReplaced = true; continue;
                }
                if (i + 1 >= args.Length) throw new ArgumentException(a + " needs a value (try --help)");
                string v = args[++i];
                switch (a)
                {
                    case "--account": c.Account = v; break;
                    case "--sync": c.Sync = v; break;
                    case "--transport":
                        if (v != "tcp" && v != "udp") throw new ArgumentException("--transport is tcp or udp, not " + v);
                        c.Transport = v;
                        break;
                    case "--bots": c.Bots = Int(a, v, 1); break;
                    case "--room-size": c.RoomSize = Int(a, v, 1); break;
                    case "--room": c.Room = v; break;
                    case "--duration-secs": c.DurationSecs = Num(a, v); break;
                    case "--actions-per-sec": c.ActionsPerSec = Num(a, v); break;
                    case "--prefix": c.Prefix = v; break;
                    case "--password": c.Password = v; break;
                    case "--join-timeout-secs": c.JoinTimeoutSecs = Num(a, v); break;
                    case "--linger-ticks": c.LingerTicks = Int(a, v, 0); break;
                    case "--frames-out": c.FramesOut = v; break;
                    case "--progress-secs": c.ProgressSecs = Num(a, v); break;
                    case "--loop-hz": c.LoopHz = Int(a, v, 0); break;
                    default: throw new ArgumentException("unknown argument " + a + " (try --help)");
                }
            }
            return c;
        }

        public string RoomOf(int i)
        {
            if (QuickMatch) return null;
            return Room ?? Prefix + "-room-" + (i / RoomSize);
        }

        private static int Int(string name, string v, int min)
        {
            int n;
            if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out n) || n < min)
            {
                throw new ArgumentException(name + " must be an integer >= " + min);
            }
            return n;
        }

        private static double Num(string name, string v)
        {
            double d;
            if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out d) || d < 0 || double.IsInfinity(d))
            {
                throw new ArgumentException(name + " must be a non-negative number");
            }
            return d;
        }
    }
}
