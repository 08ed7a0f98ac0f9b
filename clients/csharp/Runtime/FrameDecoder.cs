using System;

namespace Movan.Client
{
    /// <summary>
    /// Splits a TCP byte stream into frame bodies (docs/protocol.md §2): a 4-byte big-endian length, then the body.
    /// Feed it whatever each read returned; "not enough bytes yet" is the normal <c>false</c> of <see cref="TryNext"/>.
    /// </summary>
    public sealed class FrameDecoder
    {
        /// <summary>What clients should accept from the server: 16 MiB, as the Rust SDK does.</summary>
        public const int DefaultMaxServerFrame = 16 * 1024 * 1024;

        private readonly int maxBody;
        private byte[] buf = new byte[4096];
        private int start;
        private int end;

        /// <summary>A decoder refusing bodies above <paramref name="maxBody"/> bytes.</summary>
        public FrameDecoder(int maxBody = DefaultMaxServerFrame)
        {
            if (maxBody < 0) throw new ArgumentOutOfRangeException("maxBody");
            this.maxBody = maxBody;
        }

        /// <summary>Bytes received but not yet returned as a body.</summary>
        public int Buffered { get { return end - start; } }

        /// <summary>Appends <paramref name="count"/> received bytes.</summary>
        public void Push(byte[] data, int offset, int count)
        {
            if (count <= 0) return;
            if (buf.Length - end < count)
            {
                int live = end - start;
                if (buf.Length - live >= count && start > 0)
                {
                    Buffer.BlockCopy(buf, start, buf, 0, live);
                }
                else
                {
                    int size = buf.Length;
                    while (size - live < count) size *= 2;
                    var bigger = new byte[size];
                    Buffer.BlockCopy(buf, start, bigger, 0, live);
                    buf = bigger;
                }
                start = 0;
                end = live;
            }
            Buffer.BlockCopy(data, offset, buf, end, count);
            end += count;
        }

        /// <summary>The next whole body, or false when it has not fully arrived yet.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Protocol"/>: the length prefix is above the maximum
        /// (judged from the prefix alone, before the body arrives).</exception>
        public bool TryNext(out byte[] body)
        {
            body = null;
            int live = end - start;
            if (live < 4) return false;
            uint len = ((uint)buf[start] << 24) | ((uint)buf[start + 1] << 16) | ((uint)buf[start + 2] << 8) |
                buf[start + 3];
            if (len > (uint)maxBody)
            {
                throw new MovanException(ErrorKind.Protocol,
                    "the server sent a " + len + "-byte frame, above the " + maxBody + "-byte limit");
            }
            if (live - 4 < (int)len) return false;
            body = new byte[len];
            Buffer.BlockCopy(buf, start + 4, body, 0, (int)len);
            start += 4 + (int)len;
            if (start == end)
            {
                start = 0;
                end = 0;
                // Give back memory after a large frame.
                if (buf.Length > 65536) buf = new byte[4096];
            }
            return true;
        }

        /// <summary>A whole frame: the 4-byte big-endian length of <paramref name="count"/> bytes, then those bytes.</summary>
        public static byte[] Encode(byte[] body, int offset, int count)
        {
            var wire = new byte[4 + count];
            wire[0] = (byte)(count >> 24);
            wire[1] = (byte)(count >> 16);
            wire[2] = (byte)(count >> 8);
            wire[3] = (byte)count;
            Buffer.BlockCopy(body, offset, wire, 4, count);
            return wire;
        }
    }
}
