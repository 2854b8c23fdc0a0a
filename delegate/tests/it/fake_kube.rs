//! FakeKubeApi: a fake Kubernetes API server, since no real one can run here. Plain HTTP/1.1 on
//! 127.0.0.1, reached through a kubeconfig like any cluster, speaking the real API's JSON for
//! the endpoints the delegate uses: `/version`, list / get / delete pods (label selectors with
//! `=`, `!=` and existence; field selectors on `metadata.name` and `status.phase`; `Running`
//! pods have a `Ready` condition), get Deployments and StatefulSets, and the
//! `scale` subresource of Deployments and StatefulSets (get, merge patch honouring
//! `metadata.resourceVersion` with 409 Conflict, and planned 409s), and list / get / merge patch
//! (`spec.unschedulable`) nodes. It records every request.
//!
//! It runs on a thread and runtime of its own, so a test may block its own runtime (the
//! delegate's fault calls are synchronous) without stalling the server.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
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

#[derive(Default)]
pub struct State {
    /// (namespace, name) -> labels and phase.
    pub pods: BTreeMap<(String, String), (BTreeMap<String, String>, String)>,
    /// (resource, namespace, name) -> (replicas, resourceVersion); resource is `deployments` or
    /// `statefulsets`.
    pub scales: BTreeMap<(String, String, String), (i32, u64)>,
    /// name -> (labels, unschedulable, resourceVersion): the cluster's nodes.
    pub nodes: BTreeMap<String, (BTreeMap<String, String>, bool, u64)>,
    /// The next this many PATCHes answer 409 Conflict.
    pub conflicts: u32,
    pub requests: Vec<ApiRequest>,
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
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.state
            .lock()
            .unwrap()
            .pods
            .insert((ns.into(), name.into()), (labels, "Running".into()));
    }

    /// `Running` pods are Ready; any other phase is not.
    pub fn set_phase(&self, ns: &str, name: &str, phase: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(p) = s.pods.get_mut(&(ns.to_string(), name.to_string())) {
            p.1 = phase.into();
        }
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

impl Drop for FakeKubeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The API's `Status` object for a failure.
fn failure(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn pod_json(ns: &str, name: &str, labels: &BTreeMap<String, String>, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels, "uid": format!("uid-{name}"),
                        "resourceVersion": "1"},
           "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
           "status": {"phase": phase, "conditions": [
               {"type": "Ready", "status": if phase == "Running" { "True" } else { "False" }}]}})
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

fn fields_match(sel: &str, name: &str, phase: &str) -> bool {
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
                "status.phase" => phase,
                _ => return false,
            };
            (actual == v.trim()) == eq
        })
}

async fn handle(st: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
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
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods"]) => {
            let q = query(&uri);
            let items: Vec<Value> = s
                .pods
                .iter()
                .filter(|((n, _), _)| n == ns)
                .filter(|((_, name), (labels, phase))| {
                    q.get("labelSelector")
                        .is_none_or(|l| labels_match(l, labels))
                        && q.get("fieldSelector")
                            .is_none_or(|f| fields_match(f, name, phase))
                })
                .map(|((n, name), (labels, phase))| pod_json(n, name, labels, phase))
                .collect();
            reply(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                       "items": items}),
            )
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
                s.pods.remove(&key)
            } else {
                s.pods.get(&key).cloned()
            };
            match found {
                Some((labels, phase)) => reply(StatusCode::OK, pod_json(ns, name, &labels, &phase)),
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
