using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Movan.Client.Tests.EndToEnd
{
    /// <summary>
    /// A UDP relay on a free loopback port in front of one server. Each client address gets its own upstream socket,
    /// so the server sees one address per client socket (a new port after a rebind, as behind a NAT).
    /// <see cref="CutAll"/> black-holes every path relayed so far, both directions, without a word, as when a
    /// network goes away; datagrams from new client addresses (a reconnect's new socket) are relayed again.
    /// </summary>
    public sealed class UdpProxy : IDisposable
    {
        private readonly Socket front;
        private readonly IPEndPoint target;
        private readonly Dictionary<string, Path> paths = new Dictionary<string, Path>();
        private volatile bool stopped;

        public UdpProxy(string target)
        {
            string host;
            int port;
            Movan.Client.TcpTransport.SplitAddress(target, out host, out port);
            this.target = new IPEndPoint(IPAddress.Parse(host), port);
            front = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            front.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            new Thread(FrontLoop) { IsBackground = true, Name = "test-udp-proxy" }.Start();
        }

        /// <summary>Where clients send.</summary>
        public string Address
        {
            get { return "127.0.0.1:" + ((IPEndPoint)front.LocalEndPoint).Port; }
        }

        /// <summary>Client addresses seen so far (one per client socket).</summary>
        public int Paths
        {
            get { lock (paths) return paths.Count; }
        }

        /// <summary>Drops everything on the paths relayed so far, from now on; returns how many there were.</summary>
        public int CutAll()
        {
            int n = 0;
            lock (paths)
            {
                foreach (Path p in paths.Values)
                {
                    if (!p.Cut) n++;
                    p.Cut = true;
                }
            }
            return n;
        }

        private void FrontLoop()
        {
            var buf = new byte[65536];
            while (!stopped)
            {
                EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                int n;
                try
                {
                    n = front.ReceiveFrom(buf, ref from);
                }
                catch (SocketException)
                {
                    continue;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                Path p;
                lock (paths)
                {
                    if (!paths.TryGetValue(from.ToString(), out p))
                    {
                        p = new Path(this, (IPEndPoint)from);
                        paths[from.ToString()] = p;
                    }
                }
                if (p.Cut) continue;
                try
                {
                    p.Upstream.Send(buf, 0, n, SocketFlags.None);
                }
                catch (SocketException)
                {
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        public void Dispose()
        {
            stopped = true;
            front.Close();
            lock (paths)
            {
                foreach (Path p in paths.Values) p.Upstream.Close();
            }
        }

        private sealed class Path
        {
            public readonly Socket Upstream;
            public volatile bool Cut;
            private readonly UdpProxy proxy;
            private readonly IPEndPoint client;

            public Path(UdpProxy proxy, IPEndPoint client)
            {
                this.proxy = proxy;
                this.client = client;
                Upstream = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                Upstream.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                Upstream.Connect(proxy.target);
                new Thread(BackLoop) { IsBackground = true, Name = "test-udp-proxy-path" }.Start();
            }

            private void BackLoop()
            {
                var buf = new byte[65536];
                while (!proxy.stopped)
                {
                    int n;
                    try
                    {
                        n = Upstream.Receive(buf);
                    }
                    catch (SocketException)
                    {
                        continue;
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                    if (Cut) continue;
                    try
                    {
                        proxy.front.SendTo(buf, 0, n, SocketFlags.None, client);
                    }
                    catch (SocketException)
                    {
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                }
            }
        }
    }
}
