//! A TCP relay that can be cut and restored: it stands in front of the real PostgreSQL so a
//! test can take the database away from one gateway without disturbing the server (or the
//! other tests using it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// While set, a connection whose client sends these bytes is dropped right there.
    trap: Arc<Mutex<Option<&'static [u8]>>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let relays = Arc::new(Mutex::new(Vec::new()));
        let trap: Arc<Mutex<Option<&'static [u8]>>> = Arc::default();
        let (accepting, registry, traps) = (open.clone(), relays.clone(), trap.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused as soon as it opens
                }
                let trap = traps.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, trap).await;
                    }
                });
                registry.lock().unwrap().push(relay);
            }
        });
        TcpProxy {
            addr,
            open,
            relays,
            trap,
        }
    }

    /// From now on, drops a connection as its client sends `needle` (an SQL statement, say):
    /// the server sees the connection end in the middle of whatever it was doing.
    pub fn cut_on(&self, needle: &'static [u8]) {
        *self.trap.lock().unwrap() = Some(needle);
    }

    pub fn disarm(&self) {
        *self.trap.lock().unwrap() = None;
    }

    /// Drops every relayed connection and refuses new ones, like a server that went away.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways; a client chunk holding the trap's bytes ends the connection unsent.
async fn relay(client: TcpStream, server: TcpStream, trap: Arc<Mutex<Option<&'static [u8]>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let trapped = trap
                .lock()
                .unwrap()
                .is_some_and(|needle| buf[..n].windows(needle.len()).any(|w| w == needle));
            if trapped || server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
