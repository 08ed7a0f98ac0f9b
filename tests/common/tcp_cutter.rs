//! A TCP proxy for end-to-end tests that can cut every connection through it and refuse new ones for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// A TCP proxy that can cut every connection through it and refuse new ones, like a network going down.
#[derive(Debug)]
pub struct TcpCutter {
    /// Where clients connect instead of the server.
    pub addr: String,
    links: Arc<Mutex<JoinSet<()>>>,
    down: Arc<AtomicBool>,
}

impl TcpCutter {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound listener has an address").to_string();
        let links = Arc::new(Mutex::new(JoinSet::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (l, d) = (links.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client); // The network is down: the connection dies at once.
                    continue;
                }
                let upstream = upstream.clone();
                l.lock().await.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { addr, links, down }
    }

    /// Kills every connection through the proxy and refuses new ones for `for_how_long`.
    pub async fn outage(&self, for_how_long: Duration) {
        self.down.store(true, Ordering::SeqCst);
        self.links.lock().await.abort_all();
        let down = self.down.clone();
        tokio::spawn(async move {
            tokio::time::sleep(for_how_long).await;
            down.store(false, Ordering::SeqCst);
        });
    }
}
