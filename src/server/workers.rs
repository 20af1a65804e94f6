//! Connection workers: a thread per core, each running its own single-threaded runtime.
//!
//! Everything one connection does (TLS, the HTTP codec, the gateway's handler, the upstream
//! connections it opens) then runs on one thread, with no work-stealing queues and no wake-ups
//! across threads on the request path; on `benches/load.sh` that is about a fifth less CPU per
//! request than the same code on tokio's multi-thread scheduler. The accept loop stays on the
//! main runtime and hands each new connection to the worker serving the fewest. The price: one
//! connection, however many HTTP/2 streams it carries, is served by one core.
//!
//! Each worker owns what must stay on its thread (its upstream connection pools), made for it
//! at start and handed to every connection it serves.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The number of workers `configured` asks for: 0 means one per core available to us.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Blocking work (redb transactions) a worker may run at once; the rest queue.
const MAX_BLOCKING_THREADS: usize = 64;

pub struct Workers<P> {
    workers: Vec<Worker<P>>,
    /// Where the search for the least loaded worker starts, turning, so ties spread out.
    next: AtomicUsize,
}

struct Worker<P> {
    runtime: Handle,
    /// Connections (and tunnels) this worker is serving, to choose the least loaded.
    connections: Arc<AtomicUsize>,
    /// What this worker's connections use and no other worker's may.
    own: Arc<P>,
    /// Sent, or dropped with the workers: the worker's runtime then stops, dropping what it
    /// still runs.
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl<P: Send + Sync + 'static> Workers<P> {
    /// Starts `count` workers (at least one), each with what `own` makes for it from its
    /// connection count.
    pub async fn start(
        count: usize,
        mut own: impl FnMut(Arc<AtomicUsize>) -> P,
    ) -> std::io::Result<Workers<P>> {
        let mut workers = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let connections = Arc::<AtomicUsize>::default();
            let owned = own(connections.clone());
            workers.push(Worker::start(index, connections, owned).await?);
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Stops every worker, dropping what they still run, and waits for their threads.
    pub async fn stop(self) {
        let threads: Vec<_> = self
            .workers
            .into_iter()
            .map(|worker| {
                let _ = worker.stop.send(());
                worker.thread
            })
            .collect();
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }

    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// Moves `stream` to the worker serving the fewest connections and runs `serve` with it
    /// there, with that worker's own things.
    pub fn serve<F, Fut>(&self, stream: TcpStream, serve: F) -> std::io::Result<()>
    where
        F: FnOnce(TcpStream, Arc<P>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // A socket belongs to the runtime that registered it; it is registered again on the
        // worker's.
        let stream = stream.into_std()?;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let worker = (0..self.workers.len())
            .map(|i| &self.workers[(first + i) % self.workers.len()])
            .min_by_key(|w| w.connections.load(Ordering::Relaxed))
            .expect("at least one worker");
        let serving = Serving::new(worker.connections.clone());
        let own = worker.own.clone();
        worker.runtime.spawn(async move {
            let _serving = serving;
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream, own).await,
                Err(error) => tracing::warn!(%error, "cannot register a connection with a worker"),
            }
        });
        Ok(())
    }
}

impl<P> Worker<P> {
    /// The runtime is built on the worker's own thread, so that whatever happens it is also
    /// dropped there, never on the async caller.
    async fn start(
        index: usize,
        connections: Arc<AtomicUsize>,
        own: P,
    ) -> std::io::Result<Worker<P>> {
        let (ready, runtime) = oneshot::channel::<std::io::Result<Handle>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("portcullis-worker-{index}"))
            .spawn(move || {
                let built = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(MAX_BLOCKING_THREADS)
                    .build();
                let runtime = match built {
                    Ok(runtime) => runtime,
                    Err(error) => return drop(ready.send(Err(error))),
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_background();
            })?;
        let runtime = runtime
            .await
            .map_err(|_| std::io::Error::other("worker thread ended while starting"))??;
        Ok(Worker {
            runtime,
            connections,
            own: Arc::new(own),
            stop,
            thread,
        })
    }
}

/// Counts one connection on a worker for as long as it lives, however its task ends.
pub struct Serving(Arc<AtomicUsize>);

impl Serving {
    fn new(connections: Arc<AtomicUsize>) -> Serving {
        connections.fetch_add(1, Ordering::Relaxed);
        Serving(connections)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_worker_and_get_its_own_things() {
        // Each worker's own thing is its index, so a connection can say whose it got.
        let mut next = 0;
        let workers = Workers::start(2, |_| {
            next += 1;
            next - 1
        })
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, mut where_served) = tokio::sync::mpsc::unbounded_channel();
        let (release, held) = tokio::sync::watch::channel(false);
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, mut held) = (seen.clone(), held.clone());
            workers
                .serve(stream, move |stream, own: Arc<usize>| async move {
                    let thread = std::thread::current().name().map(str::to_string);
                    seen.send((*own, thread)).unwrap();
                    // Stay open, so the next connection sees this worker as busier.
                    let _ = held.wait_for(|released| *released).await;
                    drop(stream);
                })
                .unwrap();
        }
        let mut served = Vec::new();
        for _ in 0..4 {
            served.push(where_served.recv().await.unwrap());
        }
        for (worker, thread) in &served {
            assert_eq!(
                thread.as_deref(),
                Some(&*format!("portcullis-worker-{worker}")),
                "a worker's own things reach only its connections"
            );
        }
        let on = |n| served.iter().filter(|(w, _)| *w == n).count();
        assert_eq!((on(0), on(1)), (2, 2), "{served:?}");
        release.send(true).unwrap();
        drop(clients);
        workers.stop().await;
    }

    #[tokio::test]
    async fn what_a_worker_makes_its_own_sees_the_workers_count() {
        // As the upstream pools do for WebSocket tunnels, which outlive their connection.
        let workers = Workers::start(2, |count| count).await.unwrap();
        let load = |n: usize| workers.workers[n].connections.load(Ordering::Relaxed);
        workers.workers[1].own.fetch_add(1, Ordering::Relaxed);
        assert_eq!((load(0), load(1)), (0, 1));
        workers.workers[1].own.fetch_sub(1, Ordering::Relaxed);
        assert_eq!((load(0), load(1)), (0, 0));
        workers.stop().await;
    }
}
