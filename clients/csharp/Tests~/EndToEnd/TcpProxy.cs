using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Movan.Client.Tests.EndToEnd
{
    /// <summary>
    /// A TCP relay on a free loopback port in front of one server, so a test can cut every connection through it
    /// (<see cref="CutAll"/>): both sides see the connection die at once, as on a network drop. New connections are
    /// relayed again afterwards, so the client can reconnect through it.
    /// </summary>
    public sealed class TcpProxy : IDisposable
    {
        private readonly TcpListener listener;
        private readonly string target;
        private readonly List<Socket> live = new List<Socket>();
        private volatile bool stopped;
        private int accepted;

        public TcpProxy(string target)
        {
            this.target = target;
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var t = new Thread(AcceptLoop) { IsBackground = true, Name = "test-proxy-accept" };
            t.Start();
        }

        /// <summary>Where clients connect.</summary>
        public string Address
        {
            get { return "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port; }
        }

        /// <summary>Connections accepted so far.</summary>
        public int Accepted { get { return Volatile.Read(ref accepted); } }

        /// <summary>Closes every relayed connection, both sides, without a goodbye; returns how many there were.</summary>
        public int CutAll()
        {
            List<Socket> sockets;
            lock (live)
            {
                sockets = new List<Socket>(live);
                live.Clear();
            }
            foreach (Socket s in sockets) Kill(s);
            return sockets.Count / 2;
        }

        private void AcceptLoop()
        {
            while (!stopped)
            {
                Socket client;
                try
                {
                    client = listener.AcceptSocket();
                }
                catch (SocketException)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                Interlocked.Increment(ref accepted);
                string host;
                int port;
                Movan.Client.TcpTransport.SplitAddress(target, out host, out port);
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    server.Connect(IPAddress.Parse(host), port);
                }
                catch (SocketException)
                {
                    Kill(client);
                    continue;
                }
                client.NoDelay = true;
                server.NoDelay = true;
                lock (live)
                {
                    live.Add(client);
                    live.Add(server);
                }
                Pump(client, server);
                Pump(server, client);
            }
        }

        private void Pump(Socket from, Socket to)
        {
            var t = new Thread(() =>
            {
                var buf = new byte[65536];
                try
                {
                    while (true)
                    {
                        int n = from.Receive(buf);
                        if (n == 0) break;
                        int sent = 0;
                        while (sent < n) sent += to.Send(buf, sent, n - sent, SocketFlags.None);
                    }
                }
                catch (SocketException)
                {
                }
                catch (ObjectDisposedException)
                {
                }
                Kill(from);
                Kill(to);
            }) { IsBackground = true, Name = "test-proxy-pump" };
            t.Start();
        }

        private static void Kill(Socket s)
        {
            try
            {
                s.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
            s.Close();
        }

        public void Dispose()
        {
            stopped = true;
            listener.Stop();
            CutAll();
        }
    }
}
