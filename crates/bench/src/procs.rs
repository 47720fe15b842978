//! Starting and stopping the processes under test.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process killed on drop.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Where it listens, e.g. `http://127.0.0.1:4321`.
    pub url: String,
}

impl Proc {
    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    /// SIGTERM first, so a server with child processes (nginx's workers) takes them down
    /// with it; SIGKILL after 2 s. A killed nginx master left its worker running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..40 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mock-upstream` on an ephemeral port with `latency_ms` added to each response.
pub fn mock(bin: &Path, latency_ms: u64) -> anyhow::Result<Proc> {
    let mut child = Command::new(bin)
        .args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--latency-ms",
            &latency_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .with_context(|| format!("unexpected mock-upstream output: {line:?}"))?
        .to_owned();
    Ok(Proc { child, url })
}

/// A free loopback port (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts a server command that listens on `port` and waits until `health_path` answers.
pub async fn server(mut cmd: Command, port: u16, health_path: &str) -> anyhow::Result<Proc> {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting server")?;
    let url = format!("http://127.0.0.1:{port}");
    let proc = Proc { child, url };
    wait_healthy(
        &format!("{}{health_path}", proc.url),
        Duration::from_secs(120),
    )
    .await?;
    Ok(proc)
}

/// Polls `url` with GET until it answers 2xx.
pub async fn wait_healthy(url: &str, limit: Duration) -> anyhow::Result<()> {
    let uri: hyper::Uri = url.parse()?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_secs(1), client.get(uri.clone())).await
            && resp.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not become healthy within {limit:?}")
}
