//! A load tool: many delegate streams from one process, each a registered delegate that says
//! Hello and heartbeats like a real one (it accepts no work). Used by the benchmark to measure
//! the hub's memory per connected delegate, and for scale work.
use crate::Api;
use anyhow::{Context, Result};
use faultline_proto::v1::{self as pb, delegate_message::Msg};
use futures::StreamExt;
use std::{path::Path, time::Duration};
use tokio::task::JoinSet;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub struct Streams {
    tasks: JoinSet<()>,
    stop: tokio::sync::watch::Sender<bool>,
    pub opened: usize,
}

impl Streams {
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

fn endpoint(hub_url: &str, ca: &Path) -> Result<Endpoint> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
        .domain_name("localhost");
    Ok(Endpoint::from_shared(hub_url.to_string())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5)))
}

pub async fn channel(hub_url: &str, ca: &Path) -> Result<Channel> {
    Ok(endpoint(hub_url, ca)?.connect().await?)
}

/// The loopback address standing for host `n` of a fleet (127.2.0.1, 127.2.0.2, …): each
/// emulated host connects from its own address, as delegates on separate machines do.
pub fn host_address(n: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, 2, (n / 250) as u8, (n % 250 + 1) as u8).into()
}

/// Registers `count` delegates named `{prefix}-N`, each on its own HTTP/2 connection from its
/// own loopback address ([`host_address`]), and holds their streams, heartbeating at the hub's
/// interval. Returns once every stream got its Welcome.
pub async fn open_fleet(
    api: &Api,
    ca: &Path,
    prefix: &str,
    count: usize,
    heartbeat: Duration,
) -> Result<Streams> {
    let ep = endpoint(&api.url, ca)?;
    let channels = (0..count)
        .map(|n| {
            ep.clone()
                .local_address(Some(host_address(n)))
                .connect_lazy()
        })
        .collect();
    open_on(api, channels, 1, prefix, count, heartbeat, None).await
}

/// Registers `count` delegates named `{prefix}-N` and holds one stream for each, multiplexing
/// `per_channel` streams on each HTTP/2 connection. Returns once every stream got its Welcome.
/// Each stream heartbeats at the hub's requested interval, or `heartbeat` if that is shorter.
pub async fn open(
    api: &Api,
    ca: &Path,
    prefix: &str,
    count: usize,
    per_channel: usize,
    heartbeat: Duration,
) -> Result<Streams> {
    open_advertising(api, ca, prefix, count, per_channel, heartbeat, None).await
}

/// [`open`], each delegate advertising `capabilities` (kinds and allow-list) when registering.
pub async fn open_advertising(
    api: &Api,
    ca: &Path,
    prefix: &str,
    count: usize,
    per_channel: usize,
    heartbeat: Duration,
    capabilities: Option<pb::Capabilities>,
) -> Result<Streams> {
    let mut channels = Vec::new();
    for _ in 0..count.div_ceil(per_channel.max(1)) {
        channels.push(channel(&api.url, ca).await?);
    }
    open_on(
        api,
        channels,
        per_channel,
        prefix,
        count,
        heartbeat,
        capabilities,
    )
    .await
}

async fn open_on(
    api: &Api,
    channels: Vec<Channel>,
    per_channel: usize,
    prefix: &str,
    count: usize,
    heartbeat: Duration,
    capabilities: Option<pb::Capabilities>,
) -> Result<Streams> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<()>>(count.max(1));
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..count {
        let capabilities = capabilities.clone();
        let (api, ch, ready, sem, mut stop) = (
            api.clone(),
            channels[i / per_channel.max(1)].clone(),
            ready_tx.clone(),
            sem.clone(),
            stop_rx.clone(),
        );
        let name = format!("{prefix}-{i}");
        tasks.spawn(async move {
            let setup = async {
                let _permit = sem.acquire().await?;
                let token = api.delegate_token().await?;
                let mut client = pb::delegate_service_client::DelegateServiceClient::new(ch);
                let reg = register(&mut client, pb::RegisterRequest { token, name, version: "0.1.0".into(), capabilities: capabilities.clone(), ..Default::default() }).await?;
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                tx.send(pb::DelegateMessage {
                    msg: Some(Msg::Hello(pb::Hello {
                        delegate_id: reg.delegate_id,
                        credential: reg.credential,
                        version: "0.1.0".into(),
                        capabilities,
                        ..Default::default()
                    })),
                })
                .await?;
                let mut inbound = client.session(tokio_stream::wrappers::ReceiverStream::new(rx)).await.context("session")?.into_inner();
                let welcome = inbound.next().await.context("stream closed before Welcome")??;
                // Heartbeat as often as the hub asks, or it closes the stream as silent.
                let every = match welcome.msg {
                    Some(pb::hub_message::Msg::Welcome(w)) if w.heartbeat_interval_ms > 0 => {
                        Duration::from_millis(w.heartbeat_interval_ms as u64).min(heartbeat)
                    }
                    _ => heartbeat,
                };
                anyhow::Ok((tx, inbound, every))
            };
            let (tx, mut inbound, every) = match setup.await {
                Ok(s) => {
                    let _ = ready.send(Ok(())).await;
                    s
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return;
                }
            };
            let mut beat = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = beat.tick() => {
                        if tx.send(pb::DelegateMessage { msg: Some(Msg::Heartbeat(pb::Heartbeat { at_ms: 0 })) }).await.is_err() { return }
                    }
                    m = inbound.next() => if !matches!(m, Some(Ok(_))) { return },
                }
            }
        });
    }
    drop(ready_tx);
    let mut opened = 0;
    while let Some(r) = ready_rx.recv().await {
        r?;
        opened += 1;
        if opened == count {
            break;
        }
    }
    Ok(Streams {
        tasks,
        stop,
        opened,
    })
}

/// Registers, waiting for the next slot while the hub's per-address limit (5 a second) refuses.
async fn register(
    client: &mut pb::delegate_service_client::DelegateServiceClient<Channel>,
    req: pb::RegisterRequest,
) -> Result<pb::RegisterResponse> {
    loop {
        match client.register(req.clone()).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            r => return Ok(r.context("register")?.into_inner()),
        }
    }
}

/// A delegate emulated by this process: registered, its stream open and heartbeating.
pub struct Emulated {
    pub tx: tokio::sync::mpsc::Sender<pb::DelegateMessage>,
    pub inbound: tonic::Streaming<pb::HubMessage>,
}

/// Registers a delegate named `name` that can run `process-pause` (waiting for the hub's
/// registration rate limit) and opens its stream, which heartbeats until dropped.
pub async fn emulated(api: &Api, ch: Channel, name: &str) -> Result<Emulated> {
    let mut client = pb::delegate_service_client::DelegateServiceClient::new(ch);
    let caps = pb::Capabilities {
        faults: vec!["process-pause".into()],
        probes: vec!["http".into()],
        allow: vec![],
    };
    let token = api.delegate_token().await?;
    let reg = register(
        &mut client,
        pb::RegisterRequest {
            token,
            name: name.into(),
            version: "0.1.0".into(),
            capabilities: Some(caps.clone()),
            ..Default::default()
        },
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tx.send(pb::DelegateMessage {
        msg: Some(Msg::Hello(pb::Hello {
            delegate_id: reg.delegate_id,
            credential: reg.credential,
            version: "0.1.0".into(),
            capabilities: Some(caps),
            ..Default::default()
        })),
    })
    .await?;
    let inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    // Heartbeats, as a real delegate sends them (the hub closes a silent stream), until the
    // stream is dropped.
    let beats = tx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tick.tick().await;
            let beat = pb::DelegateMessage {
                msg: Some(Msg::Heartbeat(pb::Heartbeat { at_ms: 0 })),
            };
            if beats.send(beat).await.is_err() {
                return;
            }
        }
    });
    Ok(Emulated { tx, inbound })
}
