//! The data path: an accept loop per running proxy and, per connection, two pumps — upstream
//! (client → server) and downstream (server → client) — each through its direction's toxics.
//!
//! Without an active toxic a pump is a plain read/write loop over one reused buffer. With toxics
//! it turns each chunk read into timed pieces in a bounded queue, so latency is added per chunk
//! (pipelined, not accumulated) and bandwidth, slicing and limits apply as in Toxiproxy. Either
//! way the pump watches the proxy's toxics and switches at once when they change.
use faultline_experiment::faults::{Stream, ToxicKind, ToxicSpec};
use nix::{
    fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags},
    unistd::pipe2,
};
use rand::Rng;
use std::{
    collections::{HashMap, VecDeque},
    io,
    os::fd::OwnedFd,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{
    io::Interest,
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    time::{sleep_until, Instant},
};

/// Size of a pump's buffer: one read at most.
const BUF: usize = 64 * 1024;
/// A pump with toxics stops reading while this much is queued (backpressure to the sender).
const MAX_QUEUED: usize = 1024 * 1024;

/// How a connection ends when a toxic or an error ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Open,
    Close,
    /// Both sockets are closed with a TCP RST (SO_LINGER 0).
    Reset,
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    proxy: String,
    upstream: String,
    toxics: watch::Receiver<Vec<ToxicSpec>>,
    mut stop: watch::Receiver<bool>,
    accepted: Arc<AtomicU64>,
    busy_poll: Duration,
) {
    tracing::debug!(proxy, listen = ?listener.local_addr().ok(), upstream, "proxy listening");
    let conn_stop = stop.clone();
    loop {
        let r = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => r,
        };
        match r {
            Ok((client, _)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let m = crate::metrics::get();
                crate::metrics::Metrics::proxy(&m.proxy_connections, "tcp", 1);
                tokio::spawn(connection(
                    client,
                    upstream.clone(),
                    toxics.clone(),
                    conn_stop.clone(),
                    busy_poll,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(proxy, error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!(proxy, "proxy stopped");
}

async fn connection(
    mut client: TcpStream,
    upstream: String,
    toxics: watch::Receiver<Vec<ToxicSpec>>,
    mut stop: watch::Receiver<bool>,
    busy_poll: Duration,
) {
    let _ = client.set_nodelay(true);
    let mut server = tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        r = tokio::time::timeout(super::CONNECT_TIMEOUT, TcpStream::connect(&upstream)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(upstream, error = %e, "proxy upstream connect failed");
                return;
            }
            Err(_) => {
                tracing::debug!(upstream, "proxy upstream connect timed out");
                return;
            }
        }
    };
    let _ = server.set_nodelay(true);
    let (end_tx, mut end_rx) = watch::channel(End::Open);
    {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up =
            Pump::new(Stream::Upstream, toxics.clone(), &end_tx, busy_poll).run(&mut cr, &mut sw);
        let down = Pump::new(Stream::Downstream, toxics, &end_tx, busy_poll).run(&mut sr, &mut cw);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = end_rx.wait_for(|e| *e != End::Open) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    if *end_rx.borrow() == End::Reset {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// What a toxic remembers per connection and direction.
struct ToxicState {
    /// The toxicity the decision was made for; a changed toxicity decides again.
    toxicity: f64,
    applies: bool,
    /// When the toxic reached this connection (timers of `timeout` and `reset_peer`).
    since: Instant,
    /// `bandwidth`: when the next byte may go.
    next_free: Instant,
    /// `limit_data`: bytes let through.
    passed: u64,
}

/// A piece of output, due at a time.
enum Out {
    Data(Instant, Vec<u8>),
    /// Close the whole connection (limit reached).
    Close(Instant),
    /// Close this direction's write side (the peer closed; `slow_close` may delay it).
    Eof(Instant),
}

impl Out {
    fn due(&self) -> Instant {
        match self {
            Out::Data(t, _) | Out::Close(t) | Out::Eof(t) => *t,
        }
    }
}

struct Pump<'a> {
    stream: Stream,
    toxics: watch::Receiver<Vec<ToxicSpec>>,
    /// False once the proxy is gone: its toxics can no longer change.
    watching: bool,
    end: &'a watch::Sender<End>,
    states: HashMap<String, ToxicState>,
    /// The toxics that apply to this connection, in chain order.
    active: Vec<ToxicSpec>,
    /// How long the fast path polls before it parks ([`readable`]).
    busy_poll: Duration,
}

impl<'a> Pump<'a> {
    fn new(
        stream: Stream,
        toxics: watch::Receiver<Vec<ToxicSpec>>,
        end: &'a watch::Sender<End>,
        busy_poll: Duration,
    ) -> Self {
        Pump {
            stream,
            toxics,
            watching: true,
            end,
            states: HashMap::new(),
            active: Vec::new(),
            busy_poll,
        }
    }

    /// Takes the current toxics of this direction; toxicity is decided once per connection.
    fn refresh(&mut self) {
        let now = Instant::now();
        let all = self.toxics.borrow_and_update();
        self.active.clear();
        let mut rng = rand::rng();
        for t in all.iter().filter(|t| t.stream == self.stream) {
            let st = self
                .states
                .entry(t.name.clone())
                .or_insert_with(|| ToxicState {
                    toxicity: f64::NAN,
                    applies: false,
                    since: now,
                    next_free: now,
                    passed: 0,
                });
            if st.toxicity != t.toxicity {
                st.toxicity = t.toxicity;
                st.applies = t.toxicity >= 1.0 || rng.random::<f64>() < t.toxicity;
            }
            if st.applies {
                self.active.push(t.clone());
            }
        }
        self.states.retain(|name, _| {
            all.iter()
                .any(|t| &t.name == name && t.stream == self.stream)
        });
    }

    async fn changed(toxics: &mut watch::Receiver<Vec<ToxicSpec>>, watching: &mut bool) {
        if !*watching || toxics.changed().await.is_err() {
            *watching = false;
            std::future::pending::<()>().await;
        }
    }

    fn end(&self, how: End) {
        self.end.send_if_modified(|e| {
            if *e == End::Open {
                *e = how;
                true
            } else {
                false
            }
        });
    }

    fn fail(&self, e: &std::io::Error) {
        tracing::debug!(stream = self.stream.as_str(), error = %e, "proxy connection failed");
        self.end(if e.kind() == std::io::ErrorKind::ConnectionReset {
            End::Reset
        } else {
            End::Close
        });
    }

    async fn run<R, W>(mut self, reader: &mut R, writer: &mut W)
    where
        R: AsyncRead + AsRef<TcpStream> + Unpin,
        W: AsyncWrite + AsRef<TcpStream> + Unpin,
    {
        let mut buf = vec![0u8; BUF];
        let mut queue = Queue::default();
        let pipe = Pipe::new();
        self.refresh();
        loop {
            if self.active.is_empty() && queue.items.is_empty() {
                // Fast path: move bytes until the toxics change or the stream ends.
                loop {
                    tokio::select! {
                        biased;
                        _ = Self::changed(&mut self.toxics, &mut self.watching) => {
                            self.refresh();
                            if !self.active.is_empty() {
                                break;
                            }
                        }
                        r = readable(reader.as_ref(), self.busy_poll) => {
                            // Ready: move one chunk through, out of the select, so a toxic
                            // change never cuts a chunk in half.
                            let moved = match (r, &pipe) {
                                (Err(e), _) => Err(e),
                                (Ok(()), Some(p)) => p.pass(reader.as_ref(), writer.as_ref()).await,
                                (Ok(()), None) => copy_once(reader, writer, &mut buf).await,
                            };
                            if let Ok(Some(n)) = moved {
                                let m = crate::metrics::get();
                                crate::metrics::Metrics::proxy(&m.proxy_bytes, "tcp", n as u64);
                            }
                            match moved {
                                Ok(Some(0)) => {
                                    tracing::debug!(stream = self.stream.as_str(), "proxy stream ended");
                                    let _ = writer.shutdown().await;
                                    return;
                                }
                                Ok(_) => {}
                                Err(e) => return self.fail(&e),
                            }
                        }
                    }
                }
            }
            if !self.slow(reader, writer, &mut buf, &mut queue).await {
                return;
            }
        }
    }

    /// Runs with toxics until none applies and nothing is queued (true) or the stream ended
    /// (false).
    async fn slow<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        buf: &mut [u8],
        queue: &mut Queue,
    ) -> bool
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.active.is_empty() && queue.items.is_empty() {
                return true;
            }
            let timer = self.timer();
            let next = queue.items.front().map(Out::due);
            let far = Instant::now() + Duration::from_secs(86400);
            tokio::select! {
                biased;
                _ = sleep_until(timer.map(|t| t.0).unwrap_or(far)), if timer.is_some() => {
                    self.end(timer.map(|t| t.1).unwrap_or(End::Close));
                    return false;
                }
                _ = Self::changed(&mut self.toxics, &mut self.watching) => self.refresh(),
                _ = sleep_until(next.unwrap_or(far)), if next.is_some() => {
                    match queue.pop() {
                        Some(Out::Data(_, data)) => {
                            let m = crate::metrics::get();
                            crate::metrics::Metrics::proxy(&m.proxy_bytes, "tcp", data.len() as u64);
                            if let Err(e) = writer.write_all(&data).await {
                                self.fail(&e);
                                return false;
                            }
                        }
                        Some(Out::Close(_)) => {
                            self.end(End::Close);
                            return false;
                        }
                        Some(Out::Eof(_)) => {
                            let _ = writer.shutdown().await;
                            return false;
                        }
                        None => {}
                    }
                }
                r = reader.read(buf), if queue.reading() => match r {
                    Ok(0) => {
                        let delay = self.active.iter().map(|t| match &t.kind {
                            ToxicKind::SlowClose(s) => s.delay,
                            _ => 0,
                        }).sum();
                        queue.push(Out::Eof(Instant::now() + Duration::from_millis(delay)));
                        queue.done = true;
                    }
                    Ok(n) => self.chunk(&buf[..n], queue),
                    Err(e) => {
                        self.fail(&e);
                        return false;
                    }
                }
            }
        }
    }

    /// The earliest connection timer of the active toxics: `timeout` closes, `reset_peer` resets.
    fn timer(&self) -> Option<(Instant, End)> {
        self.active
            .iter()
            .filter_map(|t| {
                let since = self.states.get(&t.name)?.since;
                match &t.kind {
                    ToxicKind::Timeout(x) if x.timeout > 0 => {
                        Some((since + Duration::from_millis(x.timeout), End::Close))
                    }
                    ToxicKind::ResetPeer(x) => {
                        Some((since + Duration::from_millis(x.timeout), End::Reset))
                    }
                    _ => None,
                }
            })
            .min_by_key(|t| t.0)
    }

    /// Passes one chunk through the active toxics, in order, into the queue.
    fn chunk(&mut self, data: &[u8], queue: &mut Queue) {
        let now = Instant::now();
        let mut pieces: Vec<(Instant, Vec<u8>)> = vec![(now, data.to_vec())];
        let mut close = false;
        let mut rng = rand::rng();
        for t in &self.active {
            let Some(st) = self.states.get_mut(&t.name) else {
                continue;
            };
            match &t.kind {
                ToxicKind::Latency(l) => {
                    let jitter = if l.jitter > 0 {
                        rng.random_range(-(l.jitter as i64)..=l.jitter as i64)
                    } else {
                        0
                    };
                    let ms = (l.latency as i64 + jitter).max(0) as u64;
                    for p in &mut pieces {
                        p.0 += Duration::from_millis(ms);
                    }
                }
                ToxicKind::Bandwidth(b) if b.rate > 0 => {
                    // At most 100 ms worth of data per write, each sent once its time is spent.
                    let step = (b.rate as usize * 100).max(1);
                    let mut out = Vec::new();
                    for (due, bytes) in pieces.drain(..) {
                        for part in bytes.chunks(step) {
                            let start = st.next_free.max(due);
                            let cost = Duration::from_secs_f64(
                                part.len() as f64 / (b.rate as f64 * 1000.0),
                            );
                            st.next_free = start + cost;
                            out.push((st.next_free, part.to_vec()));
                        }
                    }
                    pieces = out;
                }
                ToxicKind::Slicer(s) => {
                    let mut out = Vec::new();
                    for (due, bytes) in pieces.drain(..) {
                        let (mut at, mut k) = (0usize, 0u32);
                        while at < bytes.len() {
                            let var = s.size_variation as i64;
                            let size = (s.average_size as i64 + rng.random_range(-var..=var)).max(1)
                                as usize;
                            let end = (at + size).min(bytes.len());
                            out.push((
                                due + Duration::from_micros(s.delay) * k,
                                bytes[at..end].to_vec(),
                            ));
                            at = end;
                            k += 1;
                        }
                    }
                    pieces = out;
                }
                ToxicKind::LimitData(l) => {
                    let mut left = l.bytes.saturating_sub(st.passed) as usize;
                    pieces.retain_mut(|(_, bytes)| {
                        bytes.truncate(left);
                        left -= bytes.len();
                        !bytes.is_empty()
                    });
                    st.passed += pieces.iter().map(|p| p.1.len() as u64).sum::<u64>();
                    if st.passed >= l.bytes {
                        close = true;
                    }
                }
                ToxicKind::Timeout(_) => pieces.clear(),
                ToxicKind::Bandwidth(_) | ToxicKind::ResetPeer(_) | ToxicKind::SlowClose(_) => {}
            }
        }
        let mut last = now;
        for (due, bytes) in pieces {
            last = due.max(last);
            queue.push(Out::Data(due, bytes));
        }
        if close {
            queue.push(Out::Close(last));
            queue.done = true;
        }
    }
}

/// Waits until `s` is readable. With a `spin` window it first polls for up to that long,
/// yielding to the runtime between polls (a runtime with a yielded task polls its I/O driver
/// without sleeping), so the thread stays awake for a reply that comes within the window.
async fn readable(s: &TcpStream, spin: Duration) -> io::Result<()> {
    if spin.is_zero() {
        return s.readable().await;
    }
    let until = std::time::Instant::now() + spin;
    let mut ready = std::pin::pin!(s.readable());
    loop {
        let polled = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(ready.as_mut(), cx))
        })
        .await;
        if let std::task::Poll::Ready(r) = polled {
            return r;
        }
        if std::time::Instant::now() >= until {
            return ready.await;
        }
        tokio::task::yield_now().await;
    }
}

/// One read and its write, on a socket that was just readable: `Ok(None)` when the readiness
/// was spurious, `Ok(Some(0))` at the end of the stream.
async fn copy_once<R, W>(
    reader: &mut R,
    writer: &mut W,
    buf: &mut [u8],
) -> io::Result<Option<usize>>
where
    R: AsyncRead + AsRef<TcpStream> + Unpin,
    W: AsyncWrite + Unpin,
{
    let n = match reader.as_ref().try_read(buf) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    writer.write_all(&buf[..n]).await?;
    Ok(Some(n))
}

/// A kernel pipe for splice(2): bytes go socket → pipe → socket without being copied through
/// user space (the no-toxic fast path). The pipe is always empty between two [`Pipe::pass`].
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Most bytes one pass moves: the pipe's capacity.
    size: usize,
}

/// The pipe capacity asked for (the kernel default is 64 KiB; 1 MiB is the most an
/// unprivileged process may ask by default). A bigger pipe means fewer wake-ups per byte of a
/// bulk transfer; pipe pages are only taken while bytes are in flight.
const PIPE_SIZE: usize = 1024 * 1024;

impl Pipe {
    /// None when the kernel gives no pipe: the pump then copies through its buffer.
    fn new() -> Option<Pipe> {
        if std::env::var_os("FAULTLINE_PROXY_NO_SPLICE").is_some() {
            return None;
        }
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        let size = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as _))
            .map(|n| n as usize)
            .unwrap_or(64 * 1024);
        Some(Pipe { read, write, size })
    }

    /// Moves what `from` has (up to the pipe's size) to `to`: `Ok(None)` when the readiness was
    /// spurious, `Ok(Some(0))` at the end of the stream.
    async fn pass(&self, from: &TcpStream, to: &TcpStream) -> io::Result<Option<usize>> {
        let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
        let n = match from.try_io(Interest::READABLE, || {
            splice(from, None, &self.write, None, self.size, flags).map_err(io::Error::from)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(&self.read, None, to, None, left, flags).map_err(io::Error::from)
            }) {
                Ok(k) => left -= k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(n))
    }
}

/// Output waiting for its time, in order (a piece is never sent before the one before it).
#[derive(Default)]
struct Queue {
    items: VecDeque<Out>,
    bytes: usize,
    last: Option<Instant>,
    /// Nothing more is read: the stream ended or a limit closes the connection.
    done: bool,
}

impl Queue {
    fn reading(&self) -> bool {
        !self.done && self.bytes < MAX_QUEUED
    }

    fn push(&mut self, out: Out) {
        let due = self.last.map_or(out.due(), |l| l.max(out.due()));
        self.last = Some(due);
        let out = match out {
            Out::Data(_, d) => {
                self.bytes += d.len();
                Out::Data(due, d)
            }
            Out::Close(_) => Out::Close(due),
            Out::Eof(_) => Out::Eof(due),
        };
        self.items.push_back(out);
    }

    fn pop(&mut self) -> Option<Out> {
        let out = self.items.pop_front()?;
        if let Out::Data(_, d) = &out {
            self.bytes -= d.len();
        }
        Some(out)
    }
}
