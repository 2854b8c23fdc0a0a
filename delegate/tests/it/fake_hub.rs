//! FakeHub: a small tonic hub on an ephemeral port, for tests that need exact control over what
//! the hub says and when. It stores what it receives and acknowledges events the way the real
//! hub does (highest contiguous seq per run). The real hub is tested in the e2e suite.
use faultline_proto::v1::{
    self as pb,
    delegate_message::Msg as DMsg,
    delegate_service_server::{DelegateService, DelegateServiceServer},
    hub_message::Msg as HMsg,
};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{
    transport::{server::TcpIncoming, Identity, ServerTlsConfig},
    Request, Response, Status, Streaming,
};

pub const TOKEN: &str = "fl_reg_good";
pub const DELEGATE_ID: &str = "d-0001";
pub const CREDENTIAL: &str = "fl_dlg_secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Acknowledge everything.
    Normal,
    /// First stream: acknowledge nothing and hang up once a run.finished arrives.
    DropFirstStream,
    /// Revoke the delegate right after Welcome.
    Revoke,
    /// The first [`GOING_AWAY_STREAMS`] streams: `GoingAway` right after Welcome, then the end,
    /// as a replica shutting down does.
    GoingAway,
}

/// Streams [`Mode::GoingAway`] ends at once.
pub const GOING_AWAY_STREAMS: usize = 5;

#[derive(Default)]
pub struct Seen {
    pub registrations: Vec<pb::RegisterRequest>,
    pub hellos: Vec<pb::Hello>,
    /// Every event received, duplicates included, in arrival order.
    pub events: Vec<pb::Event>,
    /// Everything else the delegate sent (RunAccepted, Aborted, ...), heartbeats excluded.
    pub others: Vec<DMsg>,
    pub heartbeats: usize,
    stored: BTreeMap<String, BTreeSet<u64>>,
}

pub struct FakeHub {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
    https: bool,
}

struct Svc {
    mode: Mode,
    seen: Arc<Mutex<Seen>>,
    assign: Arc<Mutex<Option<pb::AssignRun>>>,
}

impl FakeHub {
    /// Starts the hub in plain text; `assign` is sent once, on the first stream after Welcome.
    pub async fn start(mode: Mode, assign: Option<pb::AssignRun>) -> FakeHub {
        Self::serve(mode, assign, None).await
    }

    /// Starts the hub with TLS: a fresh CA (returned as PEM) signs a certificate for 127.0.0.1.
    pub async fn start_tls(mode: Mode) -> (FakeHub, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "FakeHub test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .unwrap()
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .unwrap();
        let identity = Identity::from_pem(leaf.pem(), leaf_key.serialize_pem());
        (
            Self::serve(mode, None, Some(ServerTlsConfig::new().identity(identity))).await,
            ca_cert.pem(),
        )
    }

    async fn serve(
        mode: Mode,
        assign: Option<pb::AssignRun>,
        tls: Option<ServerTlsConfig>,
    ) -> FakeHub {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let svc = Svc {
            mode,
            seen: seen.clone(),
            assign: Arc::new(Mutex::new(assign)),
        };
        let https = tls.is_some();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap();
        }
        let task = tokio::spawn(async move {
            let _ = builder
                .add_service(DelegateServiceServer::new(svc))
                .serve_with_incoming(incoming)
                .await;
        });
        FakeHub {
            addr,
            seen,
            task,
            https,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Events of one run as the hub stored them (each seq once, in order).
    pub fn stored(&self, run_id: &str) -> Vec<pb::Event> {
        let seen = self.seen.lock().unwrap();
        let mut by_seq = BTreeMap::new();
        for e in seen.events.iter().filter(|e| e.run_id == run_id) {
            by_seq.entry(e.seq).or_insert_with(|| e.clone());
        }
        by_seq.into_values().collect()
    }

    /// Waits (polling) until `f` holds for what the hub has seen.
    pub async fn wait_for(&self, within: Duration, what: &str, f: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if f(&self.seen.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "hub never saw: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Seen {
    pub fn finished(&self, run_id: &str) -> bool {
        self.events
            .iter()
            .any(|e| e.run_id == run_id && e.kind == "run.finished")
    }
}

fn hub(m: HMsg) -> Result<pb::HubMessage, Status> {
    Ok(pb::HubMessage { msg: Some(m) })
}

#[tonic::async_trait]
impl DelegateService for Svc {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = req.into_inner();
        if r.token != TOKEN {
            return Err(Status::unauthenticated(
                "registration token is invalid, expired or already used",
            ));
        }
        self.seen.lock().unwrap().registrations.push(r);
        Ok(Response::new(pb::RegisterResponse {
            delegate_id: DELEGATE_ID.into(),
            credential: CREDENTIAL.into(),
            project: "it".into(),
        }))
    }

    type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::HubMessage, Status>> + Send>>;

    async fn session(
        &self,
        req: Request<Streaming<pb::DelegateMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = req.into_inner();
        let Some(pb::DelegateMessage {
            msg: Some(DMsg::Hello(hello)),
        }) = inbound.message().await?
        else {
            return Err(Status::invalid_argument("the first message must be Hello"));
        };
        if hello.delegate_id != DELEGATE_ID || hello.credential != CREDENTIAL {
            return Err(Status::unauthenticated(
                "unknown delegate or bad credential",
            ));
        }
        let stream_no = {
            let mut seen = self.seen.lock().unwrap();
            seen.hellos.push(hello);
            seen.hellos.len() - 1
        };
        let (tx, rx) = mpsc::channel(64);
        let welcome = pb::Welcome {
            replica_id: "fake".into(),
            min_delegate_version: "0.1.0".into(),
            heartbeat_interval_ms: 100,
            // This fake does not echo heartbeats: its silence is never taken for a lost hub.
            heartbeat_echo: false,
        };
        let _ = tx.send(hub(HMsg::Welcome(welcome))).await;
        if self.mode == Mode::Revoke {
            let _ = tx
                .send(hub(HMsg::Revoked(pb::Revoked {
                    reason: "revoked by a test".into(),
                })))
                .await;
        }
        if self.mode == Mode::GoingAway && stream_no < GOING_AWAY_STREAMS {
            let bye = pb::GoingAway {
                reason: "this fake replica is shutting down".into(),
            };
            let _ = tx.send(hub(HMsg::GoingAway(bye))).await;
            return Ok(Response::new(Box::pin(ReceiverStream::new(rx))));
        }
        if let Some(a) = self.assign.lock().unwrap().take() {
            let _ = tx.try_send(hub(HMsg::Assign(a)));
        }
        let (seen, mode) = (self.seen.clone(), self.mode);
        tokio::spawn(async move {
            let ack = !(mode == Mode::DropFirstStream && stream_no == 0);
            while let Ok(Some(m)) = inbound.message().await {
                let Some(m) = m.msg else { continue };
                let mut acks = Vec::new();
                let mut hang_up = false;
                {
                    let mut seen = seen.lock().unwrap();
                    match m {
                        DMsg::Events(b) => {
                            for e in b.events {
                                hang_up |= !ack && e.kind == "run.finished";
                                seen.stored
                                    .entry(e.run_id.clone())
                                    .or_default()
                                    .insert(e.seq);
                                seen.events.push(e);
                            }
                            if ack {
                                for (run, seqs) in &seen.stored {
                                    let contiguous =
                                        seqs.iter().zip(1..).take_while(|(s, i)| **s == *i).count()
                                            as u64;
                                    acks.push(pb::Ack {
                                        run_id: run.clone(),
                                        seq: contiguous,
                                    });
                                }
                            }
                        }
                        DMsg::Heartbeat(_) => seen.heartbeats += 1,
                        other => seen.others.push(other),
                    }
                }
                for a in acks {
                    let _ = tx.send(hub(HMsg::Ack(a))).await;
                }
                if hang_up {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
