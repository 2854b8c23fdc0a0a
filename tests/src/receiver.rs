//! A real HTTP/1.1 webhook receiver on loopback for the notification tests and the delivery
//! benchmark: records every request (headers, body, when it arrived) and answers with the
//! statuses it is told to (then 200). Keep-alive, bodies by Content-Length, nothing else.
use anyhow::{Context, Result};
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub at: Instant,
    /// The same moment by the wall clock (compared with times stored by Postgres).
    pub wall: SystemTime,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct Shared {
    /// Answer as Grafana's annotations API does (ids, shape checks, bearer token).
    grafana: Option<String>,
    next_id: std::sync::atomic::AtomicI64,
    got: Mutex<Vec<Received>>,
    /// Statuses to answer before answering 200.
    plan: Mutex<VecDeque<u16>>,
    arrived: Notify,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on a free loopback port.
    pub async fn start() -> Result<Receiver> {
        Self::start_on(0).await
    }

    /// Listens on a free loopback port and answers as Grafana's HTTP API for annotations:
    /// `POST /api/annotations` (a JSON object with a numeric `time`, an optional numeric
    /// `timeEnd` not before it, a `text` string, `tags` strings, an optional `dashboardUID`)
    /// gets `{"id": N, "message": "Annotation added"}`; `PATCH /api/annotations/{N}` of a known
    /// id with a numeric `timeEnd` gets `{"message": "Annotation patched"}`; a bad shape 400, a
    /// missing or wrong `Authorization: Bearer <token>` 401, as Grafana answers.
    pub async fn grafana(token: &str) -> Result<Receiver> {
        Self::start_with(0, Some(token.to_string())).await
    }

    /// Listens on `port` of 127.0.0.1 (0: any free one).
    pub async fn start_on(port: u16) -> Result<Receiver> {
        Self::start_with(port, None).await
    }

    async fn start_with(port: u16, grafana: Option<String>) -> Result<Receiver> {
        let l = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding receiver port {port}"))?;
        let port = l.local_addr()?.port();
        let shared = Arc::new(Shared {
            grafana,
            ..Shared::default()
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            // Connections end with the accept loop (aborted on drop), so a stopped receiver
            // refuses everything at once.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = l.accept().await {
                conns.spawn(serve(sock, s.clone()));
            }
        });
        Ok(Receiver { port, shared, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers these statuses to the next requests, in order, then 200 again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.plan.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns all so far.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Result<Vec<Received>> {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return Ok(got);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(
                !left.is_zero(),
                "receiver: {} of {n} requests within {within:?}",
                got.len()
            );
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }
}

async fn serve(mut sock: TcpStream, s: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Headers.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        let method = first.split(' ').next().unwrap_or("").to_string();
        let path = first.split(' ').nth(1).unwrap_or("").to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        buf.drain(..end + 4);
        while buf.len() < len {
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let planned = s.plan.lock().unwrap().pop_front();
        let (status, answer) = match (&s.grafana, planned) {
            (_, Some(st)) => (st, "{\"message\":\"try again\"}".to_string()),
            (Some(token), None) => grafana_answer(&s, token, &method, &path, &headers, &body),
            (None, None) => (200, "ok".to_string()),
        };
        let path_kept = path.clone();
        s.got.lock().unwrap().push(Received {
            method,
            at: Instant::now(),
            wall: SystemTime::now(),
            path,
            headers,
            body,
            status,
        });
        s.arrived.notify_waiters();
        let text = if path_kept.starts_with("/v1/") && status < 300 {
            // OTLP/HTTP: an empty ExportTraceServiceResponse (no partial rejection).
            String::new()
        } else if s.grafana.is_some() || status < 300 {
            answer
        } else {
            "try again".to_string()
        };
        let kind = if s.grafana.is_some() {
            "application/json"
        } else {
            "text/plain"
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Grafana's answer to an annotations request (see [`Receiver::grafana`]).
fn grafana_answer(
    s: &Shared,
    token: &str,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> (u16, String) {
    let msg = |m: &str| serde_json::json!({ "message": m }).to_string();
    if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {token}")) {
        return (401, msg("Unauthorized"));
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (400, msg("bad request data"));
    };
    let time = v["time"].as_i64();
    let end_ok = |t: Option<i64>| match (&v["timeEnd"], t) {
        (serde_json::Value::Null, _) => true,
        (e, Some(t)) => e.as_i64().is_some_and(|e| e >= t),
        (e, None) => e.as_i64().is_some(),
    };
    match (method, path) {
        ("POST", "/api/annotations") => {
            let tags_ok = v["tags"]
                .as_array()
                .is_some_and(|t| t.iter().all(|x| x.is_string()));
            let uid_ok = v["dashboardUID"].is_null() || v["dashboardUID"].is_string();
            if time.is_none() || !v["text"].is_string() || !tags_ok || !uid_ok || !end_ok(time) {
                return (400, msg("bad request data"));
            }
            let id = s.next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            (
                200,
                serde_json::json!({"id": id, "message": "Annotation added"}).to_string(),
            )
        }
        ("PATCH", p) if p.starts_with("/api/annotations/") => {
            let known = p["/api/annotations/".len()..]
                .parse::<i64>()
                .is_ok_and(|id| {
                    id >= 1 && id <= s.next_id.load(std::sync::atomic::Ordering::SeqCst)
                });
            if !known {
                return (404, msg("Annotation not found"));
            }
            if v["timeEnd"].as_i64().is_none() {
                return (400, msg("bad request data"));
            }
            (200, msg("Annotation patched"))
        }
        _ => (404, msg("Not found")),
    }
}
