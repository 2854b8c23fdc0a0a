//! The `redis` probe: a small RESP2 client over one TCP connection. It authenticates
//! (`passwordFromEnv`, a variable the allow-list's `env=` names), selects the database (when not 0), then sends `PING` (ok on `PONG`) or
//! `GET key` and compares the value as expected. Everything read from the server counts against
//! [`MAX_READ`], so a wrong or hostile server cannot make the delegate buffer without bound.
use super::{bounded_part, compare, io_error_text, ms, quoted, Check, Probe};
use crate::sandbox::{egress::ConnectError, Sandbox};
use faultline_experiment::probes::{split_host_port, Probe as ProbeSpec, RedisProbe as RedisSpec};
use futures::future::BoxFuture;
use std::time::Instant;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::tcp::OwnedWriteHalf,
};

/// Largest value a `GET` may return.
const MAX_VALUE: usize = 1 << 20;
/// Everything the probe reads on one connection: the value plus a little room for the rest.
const MAX_READ: u64 = MAX_VALUE as u64 + 4096;

pub struct RedisProbe {
    pub sandbox: Sandbox,
}

impl Probe for RedisProbe {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        bounded_part(spec, self.kind(), spec.redis.as_ref(), |r| {
            run(&self.sandbox, r)
        })
    }
}

/// One reply, as far as this probe needs to tell them apart.
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    /// `-ERR …`: what the server said, kept for the detail.
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
}

async fn run(sandbox: &Sandbox, r: &RedisSpec) -> Check {
    let start = Instant::now();
    match talk(sandbox, r).await {
        Ok(Reply::Simple(pong)) if r.get.is_none() && pong == "PONG" => {
            let latency_ms = ms(start);
            Check::timed(true, latency_ms, format!("PONG in {latency_ms:.1}ms"))
        }
        Ok(Reply::Bulk(value)) if r.get.is_some() => {
            compare(start, &String::from_utf8_lossy(&value), &r.expect)
        }
        Ok(Reply::Nil) => Check::fail(start, "key not found"),
        Ok(Reply::Error(e)) => {
            let command = if r.get.is_some() { "GET" } else { "PING" };
            Check::fail(start, format!("{command} failed: {e}"))
        }
        Ok(other) => Check::fail(start, format!("unexpected reply {}", show(&other))),
        Err(e) => Check::fail(start, e),
    }
}

/// Connects, prepares the session and sends the probe's command; returns its reply.
async fn talk(sandbox: &Sandbox, r: &RedisSpec) -> Result<Reply, String> {
    let (host, port) = split_host_port(&r.address)?;
    // The password is read (if the allow-list lets it be) before anything is dialled, and only
    // sent to an address the allow-list allows.
    let password = match &r.password_from_env {
        Some(var) => Some(sandbox.env(var, "passwordFromEnv")?),
        None => None,
    };
    let stream = sandbox.connect(&host, port).await.map_err(|e| match e {
        ConnectError::Refused(why) => why,
        ConnectError::Io(e) => io_error_text(&e),
    })?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read.take(MAX_READ));
    if let Some(password) = password {
        expect_ok(&mut write, &mut read, &["AUTH", &password], "AUTH").await?;
    }
    if r.db != 0 {
        let db = r.db.to_string();
        expect_ok(
            &mut write,
            &mut read,
            &["SELECT", &db],
            &format!("SELECT {db}"),
        )
        .await?;
    }
    match &r.get {
        Some(key) => command(&mut write, &mut read, &["GET", key]).await,
        None => command(&mut write, &mut read, &["PING"]).await,
    }
}

/// Sends a command that must answer `+OK`; `what` names it in the detail (never the password).
async fn expect_ok(
    write: &mut OwnedWriteHalf,
    read: &mut (impl AsyncBufReadExt + Unpin),
    args: &[&str],
    what: &str,
) -> Result<(), String> {
    match command(write, read, args).await? {
        Reply::Simple(s) if s == "OK" => Ok(()),
        Reply::Error(e) => Err(format!("{what} failed: {e}")),
        other => Err(format!("{what}: unexpected reply {}", show(&other))),
    }
}

async fn command(
    write: &mut OwnedWriteHalf,
    read: &mut (impl AsyncBufReadExt + Unpin),
    args: &[&str],
) -> Result<Reply, String> {
    write
        .write_all(&encode(args))
        .await
        .map_err(|e| io_error_text(&e))?;
    read_reply(read).await
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply. Arrays are not needed by any command the probe sends and are refused.
async fn read_reply(read: &mut (impl AsyncBufReadExt + Unpin)) -> Result<Reply, String> {
    let line = read_line(read).await?;
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => rest
            .parse()
            .map(Reply::Integer)
            .map_err(|_| format!("bad integer reply {}", quoted(rest))),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad bulk length {}", quoted(rest)))?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let len = len as usize;
            if len > MAX_VALUE {
                return Err(format!("value of {len} bytes is larger than 1 MiB"));
            }
            let mut value = vec![0; len + 2];
            read.read_exact(&mut value)
                .await
                .map_err(|_| "connection closed in the middle of a reply".to_string())?;
            if !value.ends_with(b"\r\n") {
                return Err("bulk reply not ended by CRLF".into());
            }
            value.truncate(len);
            Ok(Reply::Bulk(value))
        }
        _ => Err(format!("unexpected reply {}", quoted(&line))),
    }
}

/// One CRLF-terminated line without its ending; the connection's read budget bounds it.
async fn read_line(read: &mut (impl AsyncBufReadExt + Unpin)) -> Result<String, String> {
    let mut line = Vec::new();
    read.read_until(b'\n', &mut line)
        .await
        .map_err(|e| io_error_text(&e))?;
    if !line.ends_with(b"\r\n") {
        return Err(if line.is_empty() {
            "connection closed by the server".into()
        } else {
            "reply cut short or too long".into()
        });
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn show(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => format!("+{s}"),
        Reply::Error(e) => format!("-{e}"),
        Reply::Integer(i) => format!(":{i}"),
        Reply::Bulk(b) => quoted(&String::from_utf8_lossy(b)),
        Reply::Nil => "nil".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, String> {
        let mut r = BufReader::new(bytes);
        read_reply(&mut r).await
    }

    #[tokio::test]
    async fn parses_every_reply_kind() {
        assert_eq!(parse(b"+PONG\r\n").await, Ok(Reply::Simple("PONG".into())));
        assert_eq!(
            parse(b"-ERR wrong\r\n").await,
            Ok(Reply::Error("ERR wrong".into()))
        );
        assert_eq!(parse(b":42\r\n").await, Ok(Reply::Integer(42)));
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Nil));
        assert_eq!(
            parse(b"$5\r\na\r\nbc\r\n").await,
            Ok(Reply::Bulk(b"a\r\nbc".to_vec()))
        );
        assert_eq!(parse(b"$0\r\n\r\n").await, Ok(Reply::Bulk(vec![])));
    }

    #[tokio::test]
    async fn refuses_broken_replies() {
        assert!(parse(b"").await.unwrap_err().contains("closed"));
        assert!(parse(b"+PONG").await.unwrap_err().contains("cut short"));
        assert!(parse(b"$10\r\nabc\r\n")
            .await
            .unwrap_err()
            .contains("middle"));
        assert!(parse(b"$2\r\nabcd").await.unwrap_err().contains("CRLF"));
        assert!(parse(b"$99999999999\r\n")
            .await
            .unwrap_err()
            .contains("larger than 1 MiB"));
        assert!(parse(b"*1\r\n$1\r\na\r\n")
            .await
            .unwrap_err()
            .contains("unexpected reply"));
        assert!(parse(b"$x\r\n")
            .await
            .unwrap_err()
            .contains("bad bulk length"));
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        assert_eq!(
            encode(&["GET", "k1"]),
            b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n".to_vec()
        );
    }
}
