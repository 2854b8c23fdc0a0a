//! FakeKubeApi: a fake Kubernetes API server, since no real one can run here. Plain HTTP/1.1 on
//! 127.0.0.1, reached through a kubeconfig like any cluster, speaking the real API's JSON for
//! the endpoints the delegate uses: `/version`, list / get / delete pods in a namespace or in
//! all of them (label selectors with `=`, `!=` and existence; field selectors on
//! `metadata.name`, `status.phase` and `spec.nodeName`; `Running` pods have a `Ready`
//! condition), **watch** pods (`?watch=true` from a `resourceVersion`: a stream of JSON lines,
//! ended by `timeoutSeconds`), the **Eviction** subresource honouring PodDisruptionBudgets (a pod
//! a budget covers is refused with 429 TooManyRequests while the budget allows no disruption;
//! an evicted pod terminates, then is gone after a set delay), get Deployments and
//! StatefulSets, and the `scale` subresource of Deployments and StatefulSets (get, merge patch
//! honouring `metadata.resourceVersion` with 409 Conflict, and planned 409s), and list / get /
//! merge patch (`spec.unschedulable`) nodes, and **exec** over a WebSocket (`v4.channel.k8s.io`:
//! the command's outcome as a `Status` on channel 3; what the image has decides whether
//! `/bin/sh` or `kill` run, and a run `kill` restarts the container). It records every request.
//!
//! It runs on a thread and runtime of its own, so a test may block its own runtime (the
//! delegate's fault calls are synchronous) without stalling the server.
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::{
    body::{Frame, Incoming},
    Method, Request, Response, StatusCode,
};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: String,
    /// Path and query, e.g. `/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb`.
    pub uri: String,
    pub body: String,
}

/// What a pod's image lets an exec run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// A shell (with its builtin `kill`) and a `kill` binary.
    Shell,
    /// A `kill` binary, no shell.
    KillOnly,
    /// Neither (distroless).
    Bare,
}

/// A pod as the fake keeps it.
#[derive(Clone, Debug)]
pub struct FakePod {
    pub labels: BTreeMap<String, String>,
    pub phase: String,
    /// The node it runs on (`spec.nodeName`).
    pub node: Option<String>,
    /// The kind of its controller (`ReplicaSet`, `StatefulSet`, `DaemonSet`); `None`: a bare pod.
    pub owner: Option<String>,
    /// It has an `emptyDir` volume.
    pub empty_dir: bool,
    /// A static pod's mirror (annotation `kubernetes.io/config.mirror`).
    pub mirror: bool,
    /// Evicted or deleted, not gone yet (`metadata.deletionTimestamp` is set).
    pub terminating: bool,
    pub resource_version: u64,
    /// Its containers, with their restart counts.
    pub containers: Vec<(String, i32)>,
    pub image: Image,
    /// The runtime id of its first container (`containerd://ID` in its status).
    pub container_id: Option<String>,
}

impl FakePod {
    /// A running pod of a ReplicaSet, on no node.
    pub fn new(labels: &[(&str, &str)]) -> FakePod {
        FakePod {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            phase: "Running".into(),
            node: None,
            owner: Some("ReplicaSet".into()),
            empty_dir: false,
            mirror: false,
            terminating: false,
            resource_version: 1,
            containers: vec![("app".into(), 0)],
            image: Image::Shell,
            container_id: None,
        }
    }

    pub fn on(mut self, node: &str) -> FakePod {
        self.node = Some(node.into());
        self
    }

    pub fn owned_by(mut self, kind: Option<&str>) -> FakePod {
        self.owner = kind.map(str::to_string);
        self
    }
}

/// A PodDisruptionBudget: the pods of `namespace` matching `selector` may lose `allowed` more.
#[derive(Clone, Debug)]
pub struct Pdb {
    pub name: String,
    pub namespace: String,
    pub selector: String,
    pub allowed: u32,
}

#[derive(Default)]
pub struct State {
    /// (namespace, name) -> the pod.
    pub pods: BTreeMap<(String, String), FakePod>,
    pub pdbs: Vec<Pdb>,
    /// How long an evicted pod terminates before it is gone (none: gone at once).
    pub eviction_delay: Option<Duration>,
    /// The last resourceVersion given out (pods).
    pub rv: u64,
    /// Pod changes as (resourceVersion, type, object), for watches.
    pub pod_events: Vec<(u64, &'static str, Value)>,
    /// (resource, namespace, name) -> (replicas, resourceVersion); resource is `deployments` or
    /// `statefulsets`.
    pub scales: BTreeMap<(String, String, String), (i32, u64)>,
    /// name -> (labels, unschedulable, resourceVersion): the cluster's nodes.
    pub nodes: BTreeMap<String, (BTreeMap<String, String>, bool, u64)>,
    /// The next this many PATCHes answer 409 Conflict.
    pub conflicts: u32,
    pub requests: Vec<ApiRequest>,
    /// Execs as (namespace/pod, container, command).
    pub execs: Vec<(String, String, Vec<String>)>,
}

pub struct FakeKubeApi {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeKubeApi {
    pub fn start() -> FakeKubeApi {
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let st = st.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let st = st.clone();
                                async move { Ok::<_, std::convert::Infallible>(handle(&st, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .with_upgrades()
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = rx.recv().unwrap();
        FakeKubeApi {
            addr,
            state,
            stop: Some(stop),
        }
    }

    /// A kubeconfig naming this server as cluster `fake` (a bearer token, as a service account
    /// would send), written under `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
                 contexts:\n- name: fake-ctx\n  context:\n    cluster: fake\n    user: tester\n\
                 current-context: fake-ctx\nusers:\n- name: tester\n  user:\n    token: fake-token\n",
                self.addr
            ),
        )
        .unwrap();
        path
    }

    pub fn add_pod(&self, ns: &str, name: &str, labels: &[(&str, &str)]) {
        self.put_pod(ns, name, FakePod::new(labels));
    }

    pub fn put_pod(&self, ns: &str, name: &str, pod: FakePod) {
        let mut s = self.state.lock().unwrap();
        s.put_pod(ns, name, pod, "ADDED");
    }

    /// `Running` pods are Ready; any other phase is not.
    pub fn set_phase(&self, ns: &str, name: &str, phase: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(mut p) = s.pods.get(&(ns.to_string(), name.to_string())).cloned() {
            p.phase = phase.into();
            s.put_pod(ns, name, p, "MODIFIED");
        }
    }

    pub fn add_pdb(&self, ns: &str, name: &str, selector: &str, allowed: u32) {
        self.state.lock().unwrap().pdbs.push(Pdb {
            name: name.into(),
            namespace: ns.into(),
            selector: selector.into(),
            allowed,
        });
    }

    pub fn set_pdb_allowed(&self, name: &str, allowed: u32) {
        let mut s = self.state.lock().unwrap();
        for p in s.pdbs.iter_mut().filter(|p| p.name == name) {
            p.allowed = allowed;
        }
    }

    pub fn set_eviction_delay(&self, delay: Duration) {
        self.state.lock().unwrap().eviction_delay = Some(delay);
    }

    /// The restart count of a pod's container.
    pub fn restarts(&self, ns: &str, pod: &str, container: &str) -> i32 {
        let s = self.state.lock().unwrap();
        s.pods[&(ns.to_string(), pod.to_string())]
            .containers
            .iter()
            .find(|c| c.0 == container)
            .map(|c| c.1)
            .unwrap()
    }

    pub fn execs(&self) -> Vec<(String, String, Vec<String>)> {
        self.state.lock().unwrap().execs.clone()
    }

    /// Every pod as `namespace/name`.
    pub fn all_pods(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.pods.keys().map(|(ns, n)| format!("{ns}/{n}")).collect()
    }

    pub fn set_replicas(&self, resource: &str, ns: &str, name: &str, replicas: i32) {
        let mut s = self.state.lock().unwrap();
        if let Some(w) = s.scales.get_mut(&(resource.into(), ns.into(), name.into())) {
            *w = (replicas, w.1 + 1);
        }
    }

    pub fn pods(&self, ns: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.pods
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub fn add_workload(&self, resource: &str, ns: &str, name: &str, replicas: i32) {
        self.state
            .lock()
            .unwrap()
            .scales
            .insert((resource.into(), ns.into(), name.into()), (replicas, 100));
    }

    pub fn replicas(&self, resource: &str, ns: &str, name: &str) -> i32 {
        self.state.lock().unwrap().scales[&(resource.into(), ns.into(), name.into())].0
    }

    pub fn add_node(&self, name: &str, labels: &[(&str, &str)], unschedulable: bool) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.state
            .lock()
            .unwrap()
            .nodes
            .insert(name.into(), (labels, unschedulable, 1));
    }

    pub fn unschedulable(&self, name: &str) -> bool {
        self.state.lock().unwrap().nodes[name].1
    }

    /// The names of the cordoned nodes.
    pub fn cordoned(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.nodes
            .iter()
            .filter(|(_, n)| n.1)
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<ApiRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests other than `GET /version`: what touched or read the cluster's objects.
    pub fn object_requests(&self) -> Vec<ApiRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.uri != "/version")
            .collect()
    }
}

impl State {
    /// Stores the pod with a new resourceVersion and records the change for watches.
    fn put_pod(&mut self, ns: &str, name: &str, mut pod: FakePod, kind: &'static str) {
        self.rv += 1;
        pod.resource_version = self.rv;
        self.pod_events
            .push((self.rv, kind, pod_json(ns, name, &pod)));
        self.pods.insert((ns.into(), name.into()), pod);
    }

    fn remove_pod(&mut self, ns: &str, name: &str) -> Option<FakePod> {
        let mut pod = self.pods.remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        pod.resource_version = self.rv;
        self.pod_events
            .push((self.rv, "DELETED", pod_json(ns, name, &pod)));
        Some(pod)
    }
}

impl Drop for FakeKubeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap()
}

/// The API's `Status` object for a failure.
fn failure(code: u16, reason: &str, message: &str) -> Response<Body> {
    reply(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn pod_json(ns: &str, name: &str, p: &FakePod) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": p.labels, "uid": format!("uid-{name}"),
                        "resourceVersion": p.resource_version.to_string()},
           "spec": {"containers": p.containers.iter()
               .map(|(c, _)| json!({"name": c, "image": "example/app:1"})).collect::<Vec<_>>()},
           "status": {"phase": p.phase, "conditions": [
               {"type": "Ready", "status": if p.phase == "Running" { "True" } else { "False" }}],
               "containerStatuses": p.containers.iter().map(|(c, r)| json!({"name": c,
                   "ready": p.phase == "Running", "restartCount": r, "image": "example/app:1",
                   "imageID": "sha256:0"})).collect::<Vec<_>>()}});
    if let Some(id) = &p.container_id {
        v["status"]["containerStatuses"][0]["containerID"] = json!(format!("containerd://{id}"));
    }
    if let Some(node) = &p.node {
        v["spec"]["nodeName"] = json!(node);
    }
    if let Some(kind) = &p.owner {
        v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": "owner", "uid": "uid-owner", "controller": true}]);
    }
    if p.empty_dir {
        v["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    }
    if p.mirror {
        v["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    }
    if p.terminating {
        v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    v
}

fn scale_json(ns: &str, name: &str, replicas: i32, rv: u64) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string()},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

fn node_json(name: &str, labels: &BTreeMap<String, String>, unschedulable: bool, rv: u64) -> Value {
    let mut spec = json!({});
    if unschedulable {
        spec["unschedulable"] = json!(true);
    }
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": labels, "uid": format!("uid-{name}"),
                        "resourceVersion": rv.to_string()},
           "spec": spec})
}

fn query(uri: &hyper::Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Label selector terms: `k=v`, `k==v`, `k!=v`, `k`, `!k`.
fn labels_match(sel: &str, labels: &BTreeMap<String, String>) -> bool {
    sel.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            if let Some((k, v)) = t.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = t.split_once('=') {
                let v = v.trim_start_matches('=');
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = t.strip_prefix('!') {
                !labels.contains_key(k)
            } else {
                labels.contains_key(t)
            }
        })
}

fn fields_match(sel: &str, name: &str, pod: &FakePod) -> bool {
    sel.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            let (k, v, eq) = match t.split_once("!=") {
                Some((k, v)) => (k, v, false),
                None => match t.split_once('=') {
                    Some((k, v)) => (k, v.trim_start_matches('='), true),
                    None => return false,
                },
            };
            let actual = match k.trim() {
                "metadata.name" => name,
                "status.phase" => &pod.phase,
                "spec.nodeName" => pod.node.as_deref().unwrap_or_default(),
                _ => return false,
            };
            (actual == v.trim()) == eq
        })
}

/// The pods of `ns` (all namespaces: `None`) that the query's selectors match, as JSON.
fn list_pods(s: &State, ns: Option<&str>, q: &BTreeMap<String, String>) -> Vec<Value> {
    s.pods
        .iter()
        .filter(|((n, _), _)| ns.is_none_or(|ns| n == ns))
        .filter(|((_, name), pod)| {
            q.get("labelSelector")
                .is_none_or(|l| labels_match(l, &pod.labels))
                && q.get("fieldSelector")
                    .is_none_or(|f| fields_match(f, name, pod))
        })
        .map(|((n, name), pod)| pod_json(n, name, pod))
        .collect()
}

/// A watch of the pods matching the query: every change after its `resourceVersion`, as JSON
/// lines, until `timeoutSeconds` (default 5) or the client goes.
fn watch_pods(
    st: &Arc<Mutex<State>>,
    ns: Option<String>,
    q: BTreeMap<String, String>,
) -> Response<Body> {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let secs: u64 = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let st = st.clone();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut seen = from;
        while tokio::time::Instant::now() < end {
            let lines: Vec<Bytes> = {
                let s = st.lock().unwrap();
                let new: Vec<_> = s.pod_events.iter().filter(|e| e.0 > seen).collect();
                if let Some(last) = new.last() {
                    seen = last.0;
                }
                new.into_iter()
                    .filter(|(_, _, obj)| {
                        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                        let n = obj["metadata"]["namespace"].as_str().unwrap_or_default();
                        let pod = s
                            .pods
                            .get(&(n.to_string(), name.to_string()))
                            .cloned()
                            .unwrap_or_else(|| FakePod {
                                node: obj["spec"]["nodeName"].as_str().map(str::to_string),
                                ..FakePod::new(&[])
                            });
                        ns.as_deref().is_none_or(|ns| ns == n)
                            && q.get("fieldSelector")
                                .is_none_or(|f| fields_match(f, name, &pod))
                    })
                    .map(|(_, kind, obj)| {
                        Bytes::from(format!("{}\n", json!({"type": kind, "object": obj})))
                    })
                    .collect()
            };
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let stream = futures::StreamExt::map(stream, |b| Ok::<_, Infallible>(Frame::data(b)));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

/// An eviction: refused with 429 while a budget covering the pod allows no disruption; else
/// the pod terminates and is gone after the eviction delay.
fn evict(st: &Arc<Mutex<State>>, s: &mut State, ns: &str, name: &str) -> Response<Body> {
    let Some(mut pod) = s.pods.get(&(ns.to_string(), name.to_string())).cloned() else {
        return failure(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let covering: Vec<usize> = s
        .pdbs
        .iter()
        .enumerate()
        .filter(|(_, b)| b.namespace == ns && labels_match(&b.selector, &pod.labels))
        .map(|(i, _)| i)
        .collect();
    if let Some(b) = covering
        .iter()
        .map(|&i| &s.pdbs[i])
        .find(|b| b.allowed == 0)
    {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests", "code": 429,
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": format!("The disruption budget {} needs 1 healthy pods and has 1 currently", b.name)}]}});
        return reply(StatusCode::TOO_MANY_REQUESTS, body);
    }
    for i in covering {
        s.pdbs[i].allowed -= 1;
    }
    match s.eviction_delay {
        None => {
            s.remove_pod(ns, name);
        }
        Some(delay) => {
            pod.terminating = true;
            s.put_pod(ns, name, pod, "MODIFIED");
            let (st, ns, name) = (st.clone(), ns.to_string(), name.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                st.lock().unwrap().remove_pod(&ns, &name);
            });
        }
    }
    reply(
        StatusCode::CREATED,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// An exec: upgrades to a WebSocket (`v4.channel.k8s.io`) and answers as the kubelet would for
/// the pod's image: the command's `Status` on channel 3, then a close.
fn exec(st: &Arc<Mutex<State>>, mut req: Request<Incoming>) -> Response<Body> {
    let uri = req.uri().clone();
    let segs: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let (ns, pod) = (segs[3].clone(), segs[5].clone());
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let container = pairs
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "app".into());
    {
        let mut s = st.lock().unwrap();
        s.requests.push(ApiRequest {
            method: req.method().to_string(),
            uri: uri.to_string(),
            body: String::new(),
        });
        s.execs
            .push((format!("{ns}/{pod}"), container.clone(), command.clone()));
    }
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return failure(400, "BadRequest", "exec needs a WebSocket upgrade");
    };
    let offered = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !offered.contains("v4.channel.k8s.io") {
        return failure(400, "BadRequest", "no supported stream protocol offered");
    }
    let status = {
        let mut s = st.lock().unwrap();
        let Some(mut p) = s.pods.get(&(ns.clone(), pod.clone())).cloned() else {
            return failure(404, "NotFound", &format!("pods \"{pod}\" not found"));
        };
        let exe = command.first().cloned().unwrap_or_default();
        let has = match exe.as_str() {
            "/bin/sh" | "sh" => p.image == Image::Shell,
            "kill" => p.image != Image::Bare,
            _ => false,
        };
        if !has {
            json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": format!("OCI runtime exec failed: exec failed: unable to start container process: exec: \"{exe}\": executable file not found in $PATH: unknown")})
        } else if command.join(" ").contains(" 1") && command.join(" ").contains("kill -") {
            // The container's init got the signal and exited: the kubelet restarts it.
            if let Some(c) = p.containers.iter_mut().find(|c| c.0 == container) {
                c.1 += 1;
            }
            s.put_pod(&ns, &pod, p, "MODIFIED");
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": "command terminated with non-zero exit code: exit code 1",
                "details": {"causes": [{"reason": "ExitCode", "message": "1"}]}})
        }
    };
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::{protocol::Role, Message};
        let Ok(up) = on.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(up),
            Role::Server,
            None,
        )
        .await;
        let mut frame = vec![3u8];
        frame.extend_from_slice(status.to_string().as_bytes());
        let _ = ws.send(Message::binary(frame)).await;
        let _ = ws.close(None).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header(
            "sec-websocket-accept",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        )
        .header("sec-websocket-protocol", "v4.channel.k8s.io")
        .body(Full::new(Bytes::new()).boxed())
        .unwrap()
}

async fn handle(st: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path().ends_with("/exec") {
        return exec(st, req);
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).to_string();
    let uri = parts.uri.clone();
    let mut s = st.lock().unwrap();
    s.requests.push(ApiRequest {
        method: parts.method.to_string(),
        uri: uri.to_string(),
        body: body.clone(),
    });
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match (&parts.method, segs.as_slice()) {
        (&Method::GET, ["version"]) => reply(
            StatusCode::OK,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                   "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                   "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
        ),
        (&Method::GET, ["api", "v1", "pods"])
        | (&Method::GET, ["api", "v1", "namespaces", _, "pods"]) => {
            let q = query(&uri);
            let ns = (segs.len() == 5).then(|| segs[3].to_string());
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                drop(s);
                return watch_pods(st, ns, q);
            }
            let items = list_pods(&s, ns.as_deref(), &q);
            reply(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList",
                       "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
            )
        }
        (&Method::POST, ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
            let (ns, name) = (ns.to_string(), name.to_string());
            let ev: Value = serde_json::from_str(&body).unwrap_or_default();
            if ev["metadata"]["name"] != json!(name) {
                return failure(
                    400,
                    "BadRequest",
                    "name in URL does not match name in Eviction object",
                );
            }
            evict(st, &mut s, &ns, &name)
        }
        (&Method::GET, ["api", "v1", "nodes"]) => {
            let q = query(&uri);
            let items: Vec<Value> = s
                .nodes
                .iter()
                .filter(|(_, (labels, _, _))| {
                    q.get("labelSelector")
                        .is_none_or(|l| labels_match(l, labels))
                })
                .map(|(name, (labels, u, rv))| node_json(name, labels, *u, *rv))
                .collect();
            reply(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"},
                       "items": items}),
            )
        }
        (m, ["api", "v1", "nodes", name]) => {
            let Some((labels, u, rv)) = s.nodes.get(*name).cloned() else {
                return failure(404, "NotFound", &format!("nodes \"{name}\" not found"));
            };
            match *m {
                Method::GET => reply(StatusCode::OK, node_json(name, &labels, u, rv)),
                Method::PATCH => {
                    let ct = parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if ct != "application/merge-patch+json" {
                        return failure(415, "UnsupportedMediaType", ct);
                    }
                    let patch: Value = match serde_json::from_str(&body) {
                        Ok(v) => v,
                        Err(e) => return failure(400, "BadRequest", &e.to_string()),
                    };
                    let conflict = "the object has been modified; please apply your changes to the latest version and try again";
                    if s.conflicts > 0 {
                        s.conflicts -= 1;
                        return failure(409, "Conflict", conflict);
                    }
                    if let Some(want) = patch
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        if want != rv.to_string() {
                            return failure(409, "Conflict", conflict);
                        }
                    }
                    let new = match patch.pointer("/spec/unschedulable") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::Null) => false,
                        _ => u,
                    };
                    s.nodes
                        .insert(name.to_string(), (labels.clone(), new, rv + 1));
                    reply(StatusCode::OK, node_json(name, &labels, new, rv + 1))
                }
                _ => failure(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        (m @ (&Method::GET | &Method::DELETE), ["api", "v1", "namespaces", ns, "pods", name]) => {
            let key = (ns.to_string(), name.to_string());
            let found = if m == Method::DELETE {
                s.remove_pod(ns, name)
            } else {
                s.pods.get(&key).cloned()
            };
            match found {
                Some(pod) => reply(StatusCode::OK, pod_json(ns, name, &pod)),
                None => failure(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        (&Method::GET, ["apis", "apps", "v1", "namespaces", ns, res, name])
            if *res == "deployments" || *res == "statefulsets" =>
        {
            let key = (res.to_string(), ns.to_string(), name.to_string());
            let Some(&(replicas, rv)) = s.scales.get(&key) else {
                return failure(404, "NotFound", &format!("{res}.apps \"{name}\" not found"));
            };
            let kind = if *res == "deployments" {
                "Deployment"
            } else {
                "StatefulSet"
            };
            reply(
                StatusCode::OK,
                json!({"apiVersion": "apps/v1", "kind": kind,
                       "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string()},
                       "spec": {"replicas": replicas},
                       "status": {"replicas": replicas, "readyReplicas": replicas}}),
            )
        }
        (m, ["apis", "apps", "v1", "namespaces", ns, res, name, "scale"])
            if *res == "deployments" || *res == "statefulsets" =>
        {
            let key = (res.to_string(), ns.to_string(), name.to_string());
            let Some(&(replicas, rv)) = s.scales.get(&key) else {
                return failure(404, "NotFound", &format!("{res}.apps \"{name}\" not found"));
            };
            match *m {
                Method::GET => reply(StatusCode::OK, scale_json(ns, name, replicas, rv)),
                Method::PATCH => {
                    let ct = parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if ct != "application/merge-patch+json" {
                        return failure(415, "UnsupportedMediaType", ct);
                    }
                    let patch: Value = match serde_json::from_str(&body) {
                        Ok(v) => v,
                        Err(e) => return failure(400, "BadRequest", &e.to_string()),
                    };
                    let conflict = "the object has been modified; please apply your changes to the latest version and try again";
                    if s.conflicts > 0 {
                        s.conflicts -= 1;
                        return failure(409, "Conflict", conflict);
                    }
                    if let Some(want) = patch
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        if want != rv.to_string() {
                            return failure(409, "Conflict", conflict);
                        }
                    }
                    let new = patch
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .map(|r| r as i32)
                        .unwrap_or(replicas);
                    s.scales.insert(key, (new, rv + 1));
                    reply(StatusCode::OK, scale_json(ns, name, new, rv + 1))
                }
                _ => failure(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        _ => failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}
