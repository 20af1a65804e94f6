//! Connection workers: a thread per core, each running its own single-threaded runtime.
//!
//! Everything one connection does (TLS, the HTTP codec, the gateway's handler, the upstream
//! connections it opens) then runs on one thread, with no work-stealing queues and no wake-ups
//! across threads on the request path; on `benches/load.sh` that is about a fifth less CPU per
//! request than the same code on tokio's multi-thread scheduler. The accept loop stays on the
//! main runtime and hands each new connection to the worker serving the fewest. The price: one
//! connection, however many HTTP/2 streams it carries, is served by one core.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// Which worker runs on this thread; `None` off the workers.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
    /// The connection count of the worker on this thread.
    static LOAD: RefCell<Option<Arc<AtomicUsize>>> = const { RefCell::new(None) };
}

/// The worker running the calling code, if any: lets per-worker state (the upstream
/// connection pools) be picked without a lock.
pub fn current() -> Option<usize> {
    CURRENT.get()
}

/// Counts something that outlives the connection that started it (a WebSocket tunnel) as one
/// more connection of the worker it runs on, for as long as the guard lives. Off the workers,
/// nothing to count.
pub fn count_as_connection() -> Option<Serving> {
    LOAD.with_borrow(|load| load.clone().map(Serving::new))
}

/// The number of workers `configured` asks for: 0 means one per core available to us.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Blocking work (redb transactions) a worker may run at once; the rest queue.
const MAX_BLOCKING_THREADS: usize = 64;

pub struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least loaded worker starts, turning, so ties spread out.
    next: AtomicUsize,
}

struct Worker {
    runtime: Handle,
    /// Connections this worker is serving, to choose the least loaded.
    connections: Arc<AtomicUsize>,
    /// Sent, or dropped with the workers: the worker's runtime then stops, dropping what it
    /// still runs.
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub async fn start(count: usize) -> std::io::Result<Workers> {
        let mut workers = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            workers.push(Worker::start(index).await?);
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
    /// there.
    pub fn serve<F, Fut>(&self, stream: TcpStream, serve: F) -> std::io::Result<()>
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
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
        worker.runtime.spawn(async move {
            let _serving = serving;
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(error) => tracing::warn!(%error, "cannot register a connection with a worker"),
            }
        });
        Ok(())
    }
}

impl Worker {
    /// The runtime is built on the worker's own thread, so that whatever happens it is also
    /// dropped there, never on the async caller.
    async fn start(index: usize) -> std::io::Result<Worker> {
        let (ready, runtime) = oneshot::channel::<std::io::Result<Handle>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let connections = Arc::<AtomicUsize>::default();
        let load = connections.clone();
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
                CURRENT.set(Some(index));
                LOAD.set(Some(load));
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
    async fn connections_go_to_the_least_loaded_worker_and_run_there() {
        let workers = Workers::start(2).await.unwrap();
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
                .serve(stream, move |stream| async move {
                    let thread = std::thread::current().name().map(str::to_string);
                    seen.send((current(), thread)).unwrap();
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
            let worker = worker.expect("served on a worker thread");
            assert_eq!(
                thread.as_deref(),
                Some(&*format!("portcullis-worker-{worker}"))
            );
        }
        let on = |n| served.iter().filter(|(w, _)| *w == Some(n)).count();
        assert_eq!((on(0), on(1)), (2, 2), "{served:?}");
        assert_eq!(current(), None, "the caller is not a worker");
        assert!(count_as_connection().is_none());
        release.send(true).unwrap();
        drop(clients);
        workers.stop().await;
    }

    #[tokio::test]
    async fn what_outlives_its_connection_counts_on_the_worker_it_runs_on() {
        let workers = Workers::start(2).await.unwrap();
        let load = |n: usize| workers.workers[n].connections.load(Ordering::Relaxed);
        // As a WebSocket tunnel does: taken on the worker, held past the connection.
        let counted = workers.workers[1]
            .runtime
            .spawn(async { count_as_connection() })
            .await
            .unwrap();
        assert!(counted.is_some());
        assert_eq!((load(0), load(1)), (0, 1));
        drop(counted);
        assert_eq!((load(0), load(1)), (0, 0));
        workers.stop().await;
    }
}
