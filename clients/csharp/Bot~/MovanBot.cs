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
    /// <summary>
    /// <c>movan-bot-cs</c>: the C# twin of the Rust <c>movan-bot</c>, for end-to-end tests and measurements. Each bot
    /// logs in, fills a room, gets ready and, once the game starts, sends <c>{"seq":n,"bot":i}</c> at a fixed rate
    /// (open loop) while checking what comes back: frames consecutive from 0, each own action exactly once, and
    /// every member of a room holding the same bytes. One thread drives every bot's <see cref="GameSession"/> the
    /// way a game loop would (<c>TryNextEvent</c> in a loop); the sessions do their network work on their own threads.
    /// Exit status: 0 when every check held, 1 otherwise, 2 on bad arguments.
    /// </summary>
    public static class Program
    {
        public static int Main(string[] args)
        {
            Config config;
            try
            {
                config = Config.Parse(args);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine("movan-bot-cs: " + e.Message);
                return 2;
            }
            if (config == null)
            {
                Console.Out.Write(Config.Usage);
                return 0;
            }
            var run = new Run(config);
            Report report = run.Execute();
            string summary = report.Summary(config);
            if (config.Json)
            {
                Console.Error.Write(summary);
                Console.Out.WriteLine(report.ToJson());
            }
            else
            {
                Console.Out.Write(summary);
            }
            if (config.FramesOut != null) run.WriteFrames(config.FramesOut);
            return report.Passed(config) ? 0 : 1;
        }
    }

    /// <summary>One bot's life, advanced by <see cref="Run"/>'s loop.</summary>
    internal sealed class BotState
    {
        public enum Phase { Joining, Starting, Playing, Lingering, Leaving, Done }

        private const int MaxMessages = 10;
        public readonly int Index;
        public Phase State = Phase.Joining;
        public GameSession Session;
        public string Uid;
        public string RoomId;
        public long Deadline;
        public long NextSendAt;
        public long SendUntil;
        public long LingerUntil;
        public long TickMs = 50;
        public readonly List<byte[]> Frames = new List<byte[]>();
        public readonly Dictionary<long, int> Seen = new Dictionary<long, int>();
        public int Dirty;
        public long Sent;
        public long SendFailures;
        public long Gaps;
        public long UnknownSeq;
        public int Reconnects;
        public bool Replaced;
        public bool Playing;
        public long ErrorCount;
        public readonly List<string> Errors = new List<string>();

        public BotState(int index)
        {
            Index = index;
        }

        public void Error(string message)
        {
            ErrorCount++;
            if (Errors.Count < MaxMessages) Errors.Add("bot " + Index + ": " + message);
        }

        public void Finish()
        {
            State = Phase.Done;
            if (Session != null) Session.Close();
        }
    }

    /// <summary>Runs every bot to completion on one loop thread.</summary>
    internal sealed class Run
    {
        private static readonly Stopwatch Clock = Stopwatch.StartNew();
        private readonly Config config;
        private readonly BotState[] bots;
        private readonly AutoResetEvent wake = new AutoResetEvent(false);
        private readonly ConcurrentQueue<BotState> dirty = new ConcurrentQueue<BotState>();
        /// <summary>Tells this process's actions from those of an earlier process on the same account (<c>--rejoin</c>).</summary>
        private readonly long runId = new Random().Next(1, int.MaxValue);
        private long framesTotal;
        private long actionsTotal;

        public Run(Config config)
        {
            this.config = config;
            bots = new BotState[config.Bots];
            for (int i = 0; i < bots.Length; i++) bots[i] = new BotState(i);
        }

        private static long Now()
        {
            return Clock.ElapsedMilliseconds;
        }

        private void MarkDirtyQuietly(BotState b)
        {
            if (b.State != BotState.Phase.Done && Interlocked.Exchange(ref b.Dirty, 1) == 0) dirty.Enqueue(b);
        }

        /// <summary>Called on a session's thread when it queued events: remember the bot and wake the loop.</summary>
        private void MarkDirty(BotState b)
        {
            if (Interlocked.Exchange(ref b.Dirty, 1) == 0) dirty.Enqueue(b);
            wake.Set();
        }

        public Report Execute()
        {
            Connect();
            long progressEvery = (long)(config.ProgressSecs * 1000);
            long nextProgress = progressEvery > 0 ? Now() + progressEvery : long.MaxValue;
            long lastFrames = 0;
            long started = Now();
            // Every bot once, for the events queued before the loop ran.
            foreach (BotState b in bots) dirty.Enqueue(b);
            int live = bots.Length;
            while (live > 0)
            {
                long now = Now();
                long next = now + 50;
                // Events only for the bots whose sessions queued some; timers for all.
                BotState d;
                while (dirty.TryDequeue(out d))
                {
                    Interlocked.Exchange(ref d.Dirty, 0);
                    if (d.State != BotState.Phase.Done) Drain(d, now);
                }
                live = 0;
                foreach (BotState b in bots)
                {
                    if (b.State == BotState.Phase.Done) continue;
                    Step(b, now);
                    if (b.State == BotState.Phase.Done) continue;
                    live++;
                    if (b.State == BotState.Phase.Playing) next = Math.Min(next, b.NextSendAt);
                }
                if (now >= nextProgress)
                {
                    long frames = Interlocked.Read(ref framesTotal);
                    Console.Error.WriteLine("movan-bot-cs progress: elapsed_s={0:F0} playing={1} frames={2} frames_per_s={3:F0} actions={4}",
                        (now - started) / 1000.0, bots.Count(b => b.Playing), frames,
                        (frames - lastFrames) * 1000.0 / progressEvery, Interlocked.Read(ref actionsTotal));
                    lastFrames = frames;
                    nextProgress += progressEvery;
                }
                if (config.LoopHz > 0)
                {
                    // A game loop: one pass per Update(), polling every session; nothing wakes it.
                    long period = Math.Max(1, 1000 / config.LoopHz);
                    long sleep = now + period - Now();
                    if (sleep > 0) Thread.Sleep((int)sleep);
                    foreach (BotState b in bots) MarkDirtyQuietly(b);
                    continue;
                }
                // Event-driven: woken by the sessions, at most one pass per millisecond however often they do.
                if (Now() == now) Thread.Sleep(1);
                int wait = (int)Math.Max(0, Math.Min(50, next - Now()));
                if (wait > 0) wake.WaitOne(wait);
            }
            return Report.Of(bots);
        }

        /// <summary>Logs every bot in and connects it, a few at a time (as players would arrive).</summary>
        private void Connect()
        {
            var account = new AccountClient(config.Account);
            var gate = new SemaphoreSlim(32);
            var tasks = new List<Task>();
            foreach (BotState b in bots)
            {
                BotState bot = b;
                tasks.Add(Task.Run(async () =>
                {
                    await gate.WaitAsync().ConfigureAwait(false);
                    try
                    {
                        string name = config.Prefix + "-" + bot.Index;
                        Session s = config.Rejoin
                            ? await account.LoginAsync(name, config.Password).ConfigureAwait(false)
                            : await account.RegisterOrLoginAsync(name, config.Password).ConfigureAwait(false);
                        var options = new GameSessionOptions { SyncAddress = config.Sync };
                        if (config.Transport == "udp") options.Transport = UdpTransport.Factory;
                        if (config.LoopHz == 0) options.EventsQueued = () => MarkDirty(bot);
                        bot.Session = GameSession.Connect(s, options);
                        bot.Uid = s.Uid;
                        bot.Deadline = Now() + (long)(config.JoinTimeoutSecs * 1000);
                        if (config.Rejoin)
                        {
                            bot.State = BotState.Phase.Starting;
                        }
                        else
                        {
                            bot.Session.EnterRoom(config.RoomOf(bot.Index));
                        }
                    }
                    catch (Exception e)
                    {
                        bot.Error("connecting: " + e.Message);
                        bot.State = BotState.Phase.Done;
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
            }
            Task.WaitAll(tasks.ToArray());
        }

        private void Drain(BotState b, long now)
        {
            GameEvent ev;
            while (b.State != BotState.Phase.Done && b.Session.TryNextEvent(out ev)) OnEvent(b, ev, now);
        }

        /// <summary>A bot's timers: sends due, phase deadlines.</summary>
        private void Step(BotState b, long now)
        {
            switch (b.State)
            {
                case BotState.Phase.Joining:
                case BotState.Phase.Starting:
                    if (now > b.Deadline)
                    {
                        b.Error(b.State == BotState.Phase.Joining ? "the room did not fill in time" : "no game_start in time");
                        b.Finish();
                    }
                    break;
                case BotState.Phase.Playing:
                    SendDue(b, now);
                    if (now >= b.SendUntil)
                    {
                        b.State = BotState.Phase.Lingering;
                        b.LingerUntil = now + b.TickMs * config.LingerTicks;
                    }
                    break;
                case BotState.Phase.Lingering:
                    if (now >= b.LingerUntil) Leave(b, now);
                    break;
                case BotState.Phase.Leaving:
                    if (now > b.Deadline)
                    {
                        b.Error("no room_left after room_leave");
                        b.Finish();
                    }
                    break;
            }
        }

        /// <summary>Open loop: every action due by now goes out, late ones at once.</summary>
        private void SendDue(BotState b, long now)
        {
            if (config.ActionsPerSec <= 0) return;
            double every = 1000.0 / config.ActionsPerSec;
            while (now >= b.NextSendAt && b.NextSendAt < b.SendUntil)
            {
                try
                {
                    b.Session.SendAction("{\"seq\":" + b.Sent + ",\"bot\":" + b.Index + ",\"run\":" + runId + "}");
                    b.Sent++;
                    Interlocked.Increment(ref actionsTotal);
                }
                catch (MovanException)
                {
                    // Reconnecting: this action is lost, as on any dropped connection; it was never sent.
                    b.SendFailures++;
                }
                b.NextSendAt = (long)Math.Ceiling(b.NextSendAt + every);
            }
        }

        private void Leave(BotState b, long now)
        {
            try
            {
                // room_left (or not_in_room, after game_over) says the seat is free before the bot hangs up.
                b.Playing = false;
                b.Session.LeaveRoom();
                b.State = BotState.Phase.Leaving;
                b.Deadline = now + 10000;
            }
            catch (MovanException e)
            {
                b.Error("leaving: " + e.Message);
                b.Finish();
            }
        }

        private void OnEvent(BotState b, GameEvent ev, long now)
        {
            var frame = ev as FrameEvent;
            if (frame != null)
            {
                OnFrame(b, frame.Frame);
                return;
            }
            var state = ev as RoomStateEvent;
            if (state != null)
            {
                if (b.State == BotState.Phase.Joining && state.State.Members.Count >= config.RoomSize)
                {
                    b.Session.Prepare();
                    b.State = BotState.Phase.Starting;
                }
                return;
            }
            var start = ev as GameStartEvent;
            if (start != null)
            {
                if (b.State != BotState.Phase.Starting) return;
                b.RoomId = start.Start.RoomId;
                b.TickMs = Math.Max(1, start.Start.FrameIntervalMs);
                b.State = BotState.Phase.Playing;
                b.Playing = true;
                b.NextSendAt = now;
                b.SendUntil = now + (long)(config.DurationSecs * 1000);
                Console.Error.WriteLine("movan-bot-cs: bot " + b.Index + " game started in room " + b.RoomId);
                return;
            }
            var over = ev as GameOverEvent;
            if (over != null)
            {
                if (b.State == BotState.Phase.Playing) b.Error("game over (" + over.Over.Reason + ") before the bot finished");
                b.Playing = false;
                b.Finish();
                return;
            }
            var err = ev as ErrorEvent;
            if (err != null)
            {
                // A leave after game_over is not_in_room: the answer to room_leave all the same. `replaced` comes
                // before the close it announces, judged there.
                if (b.State == BotState.Phase.Leaving && err.Error.Code == ErrorCode.NotInRoom)
                {
                    b.Finish();
                    return;
                }
                bool expected = config.ExpectReplaced && err.Error.Code == ErrorCode.Replaced;
                if (b.State != BotState.Phase.Leaving && !expected) b.Error("server error " + err.Error);
                return;
            }
            if (ev is RoomLeftEvent)
            {
                if (b.State == BotState.Phase.Leaving) b.Finish();
                return;
            }
            var reconnecting = ev as ReconnectingEvent;
            if (reconnecting != null)
            {
                if (reconnecting.Attempt == 1) b.Reconnects++;
                Console.Error.WriteLine("movan-bot-cs: bot " + b.Index + " reconnecting (attempt " + reconnecting.Attempt + "): " + reconnecting.Reason);
                return;
            }
            var closed = ev as ClosedEvent;
            if (closed != null)
            {
                b.Playing = false;
                if (closed.Error != null && closed.Error.Code == "replaced" && config.ExpectReplaced)
                {
                    b.Replaced = true;
                }
                else if (closed.Error != null || b.State != BotState.Phase.Done)
                {
                    b.Error("session ended: " + (closed.Error != null ? closed.Error.Code + ": " + closed.Error.Message : "closed"));
                }
                b.State = BotState.Phase.Done;
            }
        }

        private void OnFrame(BotState b, Frame f)
        {
            Interlocked.Increment(ref framesTotal);
            if (f.FrameCount != b.Frames.Count)
            {
                b.Gaps++;
                b.Error("frame " + f.FrameCount + " arrived, expected " + b.Frames.Count);
            }
            b.Frames.Add(f.Raw);
            foreach (FrameAction a in f.Actions)
            {
                if (a.Uid != b.Uid) continue;
                JsonValue run = a.ActionData["run"];
                if (run == null || run.Kind != JsonKind.Number || run.AsInt64() != runId) continue;
                JsonValue seq = a.ActionData["seq"];
                long n = seq != null && seq.Kind == JsonKind.Number ? seq.AsInt64() : -1;
                if (n < 0 || n >= b.Sent)
                {
                    b.UnknownSeq++;
                    continue;
                }
                int count;
                b.Seen.TryGetValue(n, out count);
                b.Seen[n] = count + 1;
            }
        }

        public void WriteFrames(string path)
        {
            using (var w = new StreamWriter(path, false, new UTF8Encoding(false)))
            {
                w.NewLine = "\n";
                foreach (BotState b in bots)
                {
                    foreach (byte[] raw in b.Frames)
                    {
                        w.Write(b.Index.ToString(CultureInfo.InvariantCulture));
                        w.Write('\t');
                        w.Write(Encoding.UTF8.GetString(raw));
                        w.Write('\n');
                    }
                }
            }
        }
    }

}
