//! The `runEvents` subscription over the hub's GraphQL WebSocket (`/graphql/ws`, protocol
//! `graphql-transport-ws`), for `faultline run --wait`. The API token goes in the
//! `connection_init` payload (the hub reads no header on WebSockets but the session cookie).
//! TLS is rustls with the system's web roots plus `--hub-ca`, as for the HTTP client. Every
//! read is bounded: the connect and the handshake by [`CONNECT_WAIT`], messages by
//! [`MAX_MESSAGE`], and silence by [`IDLE`] (the client pings every [`PING_EVERY`], so a quiet
//! run still answers). It only delivers events; resubscribing and falling back to polling are
//! the caller's (`gate.rs`).
use super::{graphql::chain, Client, ClientError};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, protocol::WebSocketConfig, Message,
};

const CONNECT_WAIT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(10);
/// No message (not even a pong) for this long: the connection is taken as lost.
const IDLE: Duration = Duration::from_secs(30);
const MAX_MESSAGE: usize = 4 << 20;

const SUBSCRIBE: &str = "subscription($id: ID!, $after: Int!) { runEvents(runId: $id, afterSeq: $after) { seq kind payload } }";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open `runEvents` subscription.
pub struct Events {
    socket: Socket,
    /// When the hub last sent anything (an event, a pong): [`IDLE`] after it, the connection is
    /// taken as lost.
    heard: tokio::time::Instant,
}

/// What [`Events::next`] got.
pub enum Next {
    /// One event: `{seq, kind, payload}`.
    Event(Value),
    /// The hub ended the subscription: the run has ended and every event was delivered.
    Complete,
}

/// `wss://HOST/graphql/ws` for `https://HOST` (any path prefix kept).
pub fn ws_url(hub: &str) -> Result<String, ClientError> {
    let rest = if let Some(r) = hub.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = hub.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        return Err(ClientError::Usage(format!(
            "--hub: {hub:?} is not an http(s) URL"
        )));
    };
    Ok(format!("{}/graphql/ws", rest.trim_end_matches('/')))
}

/// rustls for the WebSocket: the web's roots (as reqwest has) and the hub's CA when given.
fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert
                .map_err(|e| ClientError::Usage(format!("--hub-ca: not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Usage(format!("--hub-ca: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Usage(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The hub speaks HTTP/2 too; the WebSocket upgrade needs HTTP/1.1.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Events {
    /// Connects, authenticates and subscribes to the run's events after `after_seq`.
    pub async fn subscribe(
        client: &Client,
        run: &str,
        after_seq: i64,
    ) -> Result<Events, ClientError> {
        let transport = |what: &str, e: &dyn std::error::Error| {
            ClientError::Transport(format!("{what}: {}", chain(e)))
        };
        let mut req = ws_url(&client.hub)?
            .into_client_request()
            .map_err(|e| transport("websocket request", &e))?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws"
                .parse()
                .expect("a valid header value"),
        );
        let connector = tokio_tungstenite::Connector::Rustls(tls_config(client.ca_pem.as_deref())?);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let open = async {
            let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
                req,
                Some(config),
                true,
                Some(connector),
            )
            .await
            .map_err(|e| transport("cannot open the websocket", &e))?;
            let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", client.token)}});
            socket
                .send(Message::text(init.to_string()))
                .await
                .map_err(|e| transport("websocket", &e))?;
            loop {
                match read(&mut socket).await? {
                    Some(m) if m["type"] == "connection_ack" => break,
                    Some(m) if m["type"] == "ping" => pong(&mut socket).await?,
                    Some(_) => {}
                    None => {
                        return Err(ClientError::Usage(
                            "the hub refused the token on the websocket".into(),
                        ))
                    }
                }
            }
            let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": run, "after": after_seq}}});
            socket
                .send(Message::text(sub.to_string()))
                .await
                .map_err(|e| transport("websocket", &e))?;
            Ok(Events {
                socket,
                heard: tokio::time::Instant::now(),
            })
        };
        tokio::time::timeout(CONNECT_WAIT, open)
            .await
            .map_err(|_| {
                ClientError::Transport(format!(
                    "the websocket did not open within {CONNECT_WAIT:?}"
                ))
            })?
    }

    /// The next event, or `Complete`; an error when the connection is lost or the hub ends the
    /// subscription with an error (then resubscribe or poll).
    pub async fn next(&mut self) -> Result<Next, ClientError> {
        loop {
            let msg = tokio::select! {
                m = read(&mut self.socket) => {
                    self.heard = tokio::time::Instant::now();
                    m?
                }
                _ = tokio::time::sleep_until(self.heard + IDLE) => {
                    return Err(ClientError::Transport(format!(
                        "the websocket was silent for {IDLE:?}"
                    )));
                }
                _ = tokio::time::sleep(PING_EVERY) => {
                    let ping = json!({"type": "ping"}).to_string();
                    self.socket.send(Message::text(ping)).await.map_err(|e| {
                        ClientError::Transport(format!("websocket: {}", chain(&e)))
                    })?;
                    continue;
                }
            };
            let Some(m) = msg else {
                return Err(ClientError::Transport("the websocket closed".into()));
            };
            match m["type"].as_str().unwrap_or_default() {
                "next" => {
                    if let Some(e) = m["payload"]["errors"].get(0) {
                        return Err(ClientError::Transport(format!(
                            "the event stream ended: {}",
                            e["message"].as_str().unwrap_or("error")
                        )));
                    }
                    return Ok(Next::Event(m["payload"]["data"]["runEvents"].clone()));
                }
                "error" => {
                    let e = &m["payload"][0];
                    return Err(ClientError::Refused {
                        code: e["extensions"]["code"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        message: e["message"].as_str().unwrap_or("error").to_string(),
                        extensions: e["extensions"].clone(),
                    });
                }
                "complete" => return Ok(Next::Complete),
                "ping" => pong(&mut self.socket).await?,
                _ => {}
            }
        }
    }

    /// Says goodbye (best effort, bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

/// The next JSON message; `None` when the connection closed. Pings and pongs of the
/// WebSocket itself are answered by tungstenite.
async fn read(socket: &mut Socket) -> Result<Option<Value>, ClientError> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Err(e)) => {
                return Err(ClientError::Transport(format!("websocket: {}", chain(&e))))
            }
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map(Some)
                    .map_err(|e| ClientError::Transport(format!("websocket: not JSON: {e}")))
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn pong(socket: &mut Socket) -> Result<(), ClientError> {
    socket
        .send(Message::text(json!({"type": "pong"}).to_string()))
        .await
        .map_err(|e| ClientError::Transport(format!("websocket: {}", chain(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ws_url("https://h:8443/").unwrap(),
            "wss://h:8443/graphql/ws"
        );
        assert_eq!(ws_url("http://h/x").unwrap(), "ws://h/x/graphql/ws");
        assert!(ws_url("h:1").is_err());
    }
}
