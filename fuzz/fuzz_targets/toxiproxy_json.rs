//! The JSON bodies of the delegate's Toxiproxy-compatible API (`faultline_delegate::proxy::api`)
//! and the standalone server's `-config` file (`proxy::standalone::parse_config`): every input
//! is read as each of them. Bad bodies are 400s, never panics; what is accepted is what the API
//! answers with and takes back unchanged.
#![no_main]
use faultline_delegate::proxy::{api, standalone::parse_config, Registry};
use faultline_experiment::faults::ToxicSpec;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// One toxic of each type, to merge update bodies into.
static EXISTING: LazyLock<Vec<ToxicSpec>> = LazyLock::new(|| {
    [
        r#"{"type": "latency", "attributes": {"latency": 100, "jitter": 10}}"#,
        r#"{"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 64}}"#,
        r#"{"type": "slow_close", "toxicity": 0.5, "attributes": {"delay": 10}}"#,
        r#"{"type": "timeout", "attributes": {"timeout": 1000}}"#,
        r#"{"type": "reset_peer", "name": "rst", "attributes": {"timeout": 5}}"#,
        r#"{"type": "slicer", "attributes": {"average_size": 64, "size_variation": 8, "delay": 10}}"#,
        r#"{"type": "limit_data", "attributes": {"bytes": 4096}}"#,
    ]
    .iter()
    .map(|b| api::new_toxic(b.as_bytes()).expect("a valid toxic"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    proxy_bodies(data);
    toxic_bodies(data);
    config_file(data);
});

fn refused(e: &api::ApiError) {
    assert_eq!(e.0.as_u16(), 400, "a bad body is a 400: {e:?}");
    assert!(!e.1.is_empty());
}

fn proxy_bodies(data: &[u8]) {
    if let Err(e) = api::proxy_update(data) {
        refused(&e);
    }
    let created = api::new_proxy(data);
    match &created {
        Ok(p) => {
            assert!(!p.name.is_empty() && !p.name.contains('/') && p.name.len() <= 200);
            assert!(!p.upstream.as_deref().unwrap_or_default().is_empty());
        }
        Err(e) => refused(e),
    }
    match api::populate_list(data) {
        Ok(list) => {
            for p in list {
                let one = json!({"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": p.enabled});
                api::new_proxy(one.to_string().as_bytes()).unwrap_or_else(|e| {
                    panic!("a populated proxy is not one POST /proxies takes: {e:?}")
                });
            }
        }
        Err(e) => refused(&e),
    }
}

fn toxic_bodies(data: &[u8]) {
    match api::new_toxic(data) {
        Ok(t) => {
            // What the API answers reads back as the same toxic.
            let answered = serde_json::to_vec(&t).unwrap();
            let back = api::new_toxic(&answered)
                .unwrap_or_else(|e| panic!("the API's own answer is refused: {e:?}"));
            assert_eq!(back, t);
            assert_eq!(api::updated_toxic(&t, &json!({})).unwrap(), t);
            // A proxy that does not listen: no I/O.
            let reg = Registry::default();
            let p = reg
                .create("fuzz", "127.0.0.1:0", "127.0.0.1:1", false)
                .unwrap();
            p.add_toxics(std::slice::from_ref(&t)).unwrap();
            assert_eq!(p.toxic(&t.name), Some(t.clone()));
            assert!(
                p.add_toxics(std::slice::from_ref(&t)).is_err(),
                "names are unique"
            );
        }
        Err(e) => refused(&e),
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for old in EXISTING.iter() {
        match api::updated_toxic(old, &v) {
            Ok(u) => {
                assert_eq!(
                    (&u.name, u.stream, u.kind.type_name()),
                    (&old.name, old.stream, old.kind.type_name())
                );
                let back = api::new_toxic(&serde_json::to_vec(&u).unwrap())
                    .unwrap_or_else(|e| panic!("an updated toxic is not a valid toxic: {e:?}"));
                assert_eq!(back, u);
            }
            Err(e) => refused(&e),
        }
    }
}

fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(entries) = parse_config(text) else {
        return;
    };
    for (i, e) in entries.iter().enumerate() {
        assert!(!e.name.is_empty() && !e.name.contains('/') && e.name.len() <= 200);
        assert!(
            entries[..i].iter().all(|x| x.name != e.name),
            "duplicate name {:?}",
            e.name
        );
    }
    let written: Vec<Value> = entries
        .iter()
        .map(|e| json!({"name": e.name, "listen": e.listen, "upstream": e.upstream, "enabled": e.enabled}))
        .collect();
    let again = parse_config(&Value::Array(written).to_string())
        .unwrap_or_else(|e| panic!("the checked entries, written back, are refused: {e}"));
    assert_eq!(again, entries);
}
