//! The real `portcullis` binary as a child process: for restarts, `kill -9`, and reading
//! everything it logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

/// A free port on 127.0.0.1 (bound and released; the child binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl GatewayProcess {
    /// Runs `portcullis serve` with configuration from `env` (on top of the embedded
    /// defaults), logging at `trace` into `<dir>/gateway-<n>.log`.
    pub fn spawn(dir: &Path, env: &[(&str, String)]) -> GatewayProcess {
        GatewayProcess::start(dir, None, env)
    }

    /// Runs `portcullis serve -c <config>`, otherwise as [`GatewayProcess::spawn`].
    pub fn spawn_with_config(dir: &Path, config: &Path, env: &[(&str, String)]) -> GatewayProcess {
        GatewayProcess::start(dir, Some(config), env)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start(dir: &Path, config: Option<&Path>, env: &[(&str, String)]) -> GatewayProcess {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("gateway-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command.arg("serve");
        if let Some(config) = config {
            command.arg("-c").arg(config);
        }
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "trace")
            // The child binds a port of its own and says which in its "serving" line: a port
            // picked here and released would be free for anyone until the child took it.
            .env("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_ADMIN_ENABLED", "false")
            .env("PORTCULLIS_DATA_DIR", dir.join("data"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let mut process = GatewayProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        process.addr = process.wait_until_serving();
        process
    }

    /// The address the child reports it serves on, once it does.
    fn wait_until_serving(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let log = self.log_text();
            let serving = log.lines().find(|l| l.contains(" serving "));
            if let Some(addr) = serving.and_then(served_address) {
                return addr;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway did not start; log:\n{}", self.log_text());
    }

    /// Everything the process has written to stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no drain, no flush, nothing after the last commit survives.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit and returns its status code. Async, so this test's
    /// own client connections keep being driven (they must answer the HTTP/2 GOAWAY).
    pub async fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        None
    }
}

/// `addr=127.0.0.1:PORT` from the gateway's "serving" log line (text or JSON).
fn served_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("addr")? + 4..];
    let rest = rest.trim_start_matches(['=', '"', ':']);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `portcullis serve` expecting it to refuse to start; returns its exit code and output.
pub fn start_failure(dir: &Path, env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .arg("serve")
        .env_clear()
        .env(
            "PORTCULLIS_SERVER_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("PORTCULLIS_ADMIN_ENABLED", "false")
        .env("PORTCULLIS_DATA_DIR", dir.join("data"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}
