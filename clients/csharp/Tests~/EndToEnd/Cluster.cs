using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using Movan.Client;

namespace Movan.Client.Tests.EndToEnd
{
    /// <summary>
    /// The real <c>account-server</c> and <c>sync-server</c> on free ports with a throw-away config, data directory
    /// and keys (as tests/common/mod.rs does for the Rust tests); stopped and removed on dispose.
    /// </summary>
    public sealed class Cluster : IDisposable
    {
        private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
        private readonly string dir;
        private readonly string config;
        private readonly string extraSync;
        private ChildProcess account;
        private ChildProcess sync;

        /// <summary>Directory of the Rust binaries: <c>MOVAN_BIN_DIR</c> (test.sh sets it).</summary>
        public static string BinDir
        {
            get
            {
                string d = Environment.GetEnvironmentVariable("MOVAN_BIN_DIR");
                if (string.IsNullOrEmpty(d)) throw new InvalidOperationException("MOVAN_BIN_DIR is not set: run clients/csharp/test.sh");
                return d;
            }
        }

        public string AccountUrl { get; private set; }
        public string AccountRpc { get; private set; }
        public string SyncAddr { get; private set; }
        public string SyncUdpAddr { get; private set; }
        public string Dir { get { return dir; } }

        /// <param name="syncLines">Extra lines for the <c>[sync]</c> section, e.g. <c>max_game_secs = 4</c>.</param>
        public Cluster(params string[] syncLines)
        {
            dir = Path.Combine(Path.GetTempPath(), "movan-cs-e2e-" + Guid.NewGuid().ToString("N").Substring(0, 12));
            Directory.CreateDirectory(dir);
            config = Path.Combine(dir, "movan.toml");
            extraSync = string.Join("\n", syncLines);
            try
            {
                WriteConfig("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:1");
                using (var keygen = ChildProcess.Start(Bin("account-server"), "keygen --config " + Quote(config), null))
                {
                    if (!keygen.WaitForExit(StartTimeout) || keygen.ExitCode != 0)
                    {
                        throw new Exception("account-server keygen failed:\n" + keygen.Stderr);
                    }
                }
                account = ChildProcess.Start(Bin("account-server"), "--config " + Quote(config), null);
                AccountUrl = account.WaitForLine("account-server listening on ", StartTimeout);
                AccountRpc = account.WaitForLine("account-server rpc listening on ", StartTimeout);
                WriteConfig(AccountUrl.Replace("http://", ""), AccountRpc, AccountRpc);
                sync = ChildProcess.Start(Bin("sync-server"), "--config " + Quote(config), null);
                SyncUdpAddr = sync.WaitForLine("sync-server udp listening on ", StartTimeout);
                SyncAddr = sync.WaitForLine("sync-server listening on ", StartTimeout);
                WaitForNode();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public static string Bin(string name)
        {
            return Path.Combine(BinDir, name);
        }

        public static string Quote(string arg)
        {
            return "\"" + arg.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }

        /// <summary>Waits until logins are answered with this sync server (it has registered with the account server).</summary>
        private void WaitForNode()
        {
            using (var client = new AccountClient(AccountUrl))
            {
                DateTime deadline = DateTime.UtcNow + StartTimeout;
                Exception last = null;
                while (DateTime.UtcNow < deadline)
                {
                    try
                    {
                        Session s = client.RegisterOrLoginAsync("node-probe", "node-probe-password").Result;
                        if (s.SyncAddr == SyncAddr) return;
                    }
                    catch (Exception e)
                    {
                        last = e;
                    }
                    Thread.Sleep(50);
                }
                throw new Exception("logins never named the sync server " + SyncAddr, last);
            }
        }

        private void WriteConfig(string http, string rpc, string accountRpc)
        {
            string d = dir.Replace("\\", "/");
            var sb = new StringBuilder();
            sb.Append("[token]\nprivate_key_path = \"").Append(d).Append("/jwt.pem\"\npublic_key_path = \"").Append(d).Append("/jwt.pub.pem\"\n\n");
            sb.Append("[account]\nhttp_addr = \"").Append(http).Append("\"\nrpc_addr = \"").Append(rpc).Append("\"\n");
            sb.Append("db_path = \"").Append(d).Append("/accounts.sled\"\ndemo_dir = \"\"\njs_dir = \"\"\n\n");
            sb.Append("[rpc]\nsecret_path = \"").Append(d).Append("/rpc_secret\"\nheartbeat_interval_ms = 200\n\n");
            sb.Append("[sync]\nlisten_addr = \"127.0.0.1:0\"\nws_addr = \"\"\nudp_addr = \"127.0.0.1:0\"\nmetrics_addr = \"\"\nnode_id = \"sync-cs-test\"\n");
            sb.Append("account_rpc_addr = \"").Append(accountRpc).Append("\"\n").Append(extraSync).Append('\n');
            File.WriteAllText(config, sb.ToString());
        }

        public void Dispose()
        {
            if (sync != null) sync.Dispose();
            if (account != null) account.Dispose();
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>A child process whose output is collected line by line; killed on dispose if still running.</summary>
    public sealed class ChildProcess : IDisposable
    {
        private readonly Process process;
        private readonly List<string> stdout = new List<string>();
        private readonly StringBuilder stderr = new StringBuilder();
        private readonly Action<string> onStderrLine;
        private readonly ManualResetEvent stdoutDone = new ManualResetEvent(false);
        private readonly ManualResetEvent stderrDone = new ManualResetEvent(false);

        private ChildProcess(Process process, Action<string> onStderrLine)
        {
            this.process = process;
            this.onStderrLine = onStderrLine;
        }

        /// <summary>Starts <paramref name="file"/>; a <c>.exe</c> runs under mono.</summary>
        public static ChildProcess Start(string file, string args, Action<string> onStderrLine)
        {
            var info = new ProcessStartInfo
            {
                FileName = file.EndsWith(".exe") ? "mono" : file,
                Arguments = file.EndsWith(".exe") ? Cluster.Quote(file) + " " + args : args,
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            info.EnvironmentVariables["RUST_LOG"] = Environment.GetEnvironmentVariable("MOVAN_TEST_LOG") ?? "warn";
            var p = new Process { StartInfo = info };
            var child = new ChildProcess(p, onStderrLine);
            p.OutputDataReceived += (s, e) =>
            {
                if (e.Data == null)
                {
                    child.stdoutDone.Set();
                    return;
                }
                lock (child.stdout)
                {
                    child.stdout.Add(e.Data);
                    Monitor.PulseAll(child.stdout);
                }
            };
            p.ErrorDataReceived += (s, e) =>
            {
                if (e.Data == null)
                {
                    child.stderrDone.Set();
                    return;
                }
                lock (child.stderr) child.stderr.Append(e.Data).Append('\n');
                if (child.onStderrLine != null) child.onStderrLine(e.Data);
            };
            p.Start();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return child;
        }

        public int ExitCode { get { return process.ExitCode; } }

        public string Stderr
        {
            get { lock (stderr) return stderr.ToString(); }
        }

        public List<string> StdoutLines
        {
            get { lock (stdout) return new List<string>(stdout); }
        }

        /// <summary>Waits for a stdout line starting with <paramref name="prefix"/>; returns the rest of it.</summary>
        public string WaitForLine(string prefix, TimeSpan timeout)
        {
            DateTime deadline = DateTime.UtcNow + timeout;
            int seen = 0;
            lock (stdout)
            {
                while (true)
                {
                    for (; seen < stdout.Count; seen++)
                    {
                        if (stdout[seen].StartsWith(prefix)) return stdout[seen].Substring(prefix.Length).Trim();
                    }
                    TimeSpan left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || process.HasExited && stdoutDone.WaitOne(0))
                    {
                        throw new Exception("no line \"" + prefix + "\" from " + process.StartInfo.FileName + ":\n" + Stderr);
                    }
                    Monitor.Wait(stdout, TimeSpan.FromMilliseconds(Math.Min(100, left.TotalMilliseconds)));
                }
            }
        }

        /// <summary>Waits for the exit and for all output to be read.</summary>
        public bool WaitForExit(TimeSpan timeout)
        {
            if (!process.WaitForExit((int)timeout.TotalMilliseconds)) return false;
            stdoutDone.WaitOne(5000);
            stderrDone.WaitOne(5000);
            process.WaitForExit();
            return true;
        }

        public void Dispose()
        {
            try
            {
                if (!process.HasExited)
                {
                    // SIGTERM first, as a service expects; then kill.
                    using (Process.Start("kill", "-TERM " + process.Id)) { }
                    if (!process.WaitForExit(10000)) process.Kill();
                }
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
    }
}
