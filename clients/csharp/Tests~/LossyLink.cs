using System;
using System.Collections.Generic;

namespace Movan.Client.Tests
{
    /// <summary>
    /// A seeded fake network between two sides 0 and 1, on fake time: it drops, duplicates and delays datagrams by a
    /// random amount, so later ones overtake earlier ones.
    /// </summary>
    public sealed class LossyLink
    {
        private readonly Random rng;
        private readonly double loss;
        private readonly double duplicate;
        private readonly int minDelay;
        private readonly int maxDelay;
        private readonly List<InFlight> flight = new List<InFlight>();
        private long order;

        public LossyLink(int seed, double loss, double duplicate, int minDelayMs, int maxDelayMs)
        {
            rng = new Random(seed);
            this.loss = loss;
            this.duplicate = duplicate;
            minDelay = minDelayMs;
            maxDelay = maxDelayMs;
        }

        /// <summary>Datagrams sent, and how many of them the link dropped.</summary>
        public int Sent { get; private set; }
        public int Dropped { get; private set; }

        /// <summary>When true, everything sent is dropped.</summary>
        public bool Cut { get; set; }

        /// <summary>Sends <paramref name="d"/> from side <paramref name="from"/> at <paramref name="now"/>.</summary>
        public void Send(int from, byte[] d, long now)
        {
            Sent++;
            if (Cut || rng.NextDouble() < loss)
            {
                Dropped++;
                return;
            }
            Add(1 - from, d, now);
            if (rng.NextDouble() < duplicate) Add(1 - from, d, now);
        }

        /// <summary>The datagrams due at <paramref name="now"/>, in arrival order: (side, datagram).</summary>
        public List<KeyValuePair<int, byte[]>> Deliver(long now)
        {
            var due = new List<InFlight>();
            flight.RemoveAll(f =>
            {
                if (f.At > now) return false;
                due.Add(f);
                return true;
            });
            due.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Order.CompareTo(b.Order));
            var result = new List<KeyValuePair<int, byte[]>>();
            foreach (InFlight f in due) result.Add(new KeyValuePair<int, byte[]>(f.To, f.Data));
            return result;
        }

        private void Add(int to, byte[] d, long now)
        {
            flight.Add(new InFlight { To = to, Data = d, At = now + rng.Next(minDelay, maxDelay + 1), Order = order++ });
        }

        private sealed class InFlight
        {
            public int To;
            public byte[] Data;
            public long At;
            public long Order;
        }
    }
}
