using System.Collections.Generic;
using System.Threading;

namespace Movan.Client
{
    /// <summary>
    /// A FIFO shared by threads, bounded in count: a producer blocks while it is full (which, for a reader thread,
    /// stops reading the socket: the server then sees a slow client instead of this process growing memory).
    /// </summary>
    internal sealed class BoundedQueue<T>
    {
        private readonly Queue<T> items = new Queue<T>();
        private readonly int capacity;
        private bool closed;
        private int waitingForRoom;

        public BoundedQueue(int capacity)
        {
            this.capacity = capacity < 1 ? 1 : capacity;
        }

        public int Count
        {
            get { lock (items) return items.Count; }
        }

        /// <summary>
        /// Adds <paramref name="item"/>, waiting for room unless <paramref name="force"/> (for the few control
        /// events that must never wait); false once closed.
        /// </summary>
        public bool Add(T item, bool force)
        {
            lock (items)
            {
                while (!force && !closed && items.Count >= capacity) WaitForRoom();
                if (closed) return false;
                items.Enqueue(item);
                if (items.Count == 1) Monitor.PulseAll(items);
                return true;
            }
        }

        /// <summary>Waits while <paramref name="limit"/> or more items are queued (and the queue is open).</summary>
        public void WaitBelow(int limit)
        {
            lock (items)
            {
                while (!closed && items.Count >= limit) WaitForRoom();
            }
        }

        /// <summary>Adds unless full or closed; never waits.</summary>
        public bool TryAdd(T item)
        {
            lock (items)
            {
                if (closed || items.Count >= capacity) return false;
                items.Enqueue(item);
                if (items.Count == 1) Monitor.PulseAll(items);
                return true;
            }
        }

        /// <summary>The oldest item without waiting.</summary>
        public bool TryTake(out T item)
        {
            return Take(out item, 0);
        }

        /// <summary>
        /// The oldest item, waiting up to <paramref name="timeoutMs"/> (-1 = forever); false on timeout, or when
        /// closed and empty.
        /// </summary>
        public bool Take(out T item, int timeoutMs)
        {
            lock (items)
            {
                if (items.Count == 0 && !closed && timeoutMs != 0)
                {
                    if (timeoutMs < 0)
                    {
                        while (items.Count == 0 && !closed) Monitor.Wait(items);
                    }
                    else
                    {
                        int until = System.Environment.TickCount + timeoutMs;
                        while (items.Count == 0 && !closed)
                        {
                            int left = until - System.Environment.TickCount;
                            if (left <= 0 || !Monitor.Wait(items, left)) break;
                        }
                    }
                }
                if (items.Count == 0)
                {
                    item = default(T);
                    return false;
                }
                item = items.Dequeue();
                if (waitingForRoom > 0) Monitor.PulseAll(items);
                return true;
            }
        }

        private void WaitForRoom()
        {
            waitingForRoom++;
            try
            {
                Monitor.Wait(items);
            }
            finally
            {
                waitingForRoom--;
            }
        }

        /// <summary>Wakes every waiter; later adds fail, takes drain what is left.</summary>
        public void Close()
        {
            lock (items)
            {
                closed = true;
                Monitor.PulseAll(items);
            }
        }

        public bool IsClosed
        {
            get { lock (items) return closed; }
        }
    }
}
