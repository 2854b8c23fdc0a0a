//! What a webhook receives: the body in the webhook's format, and the signature. Pure functions;
//! the delivery loop calls them at each attempt (the timestamp is the attempt's).
use super::Format;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

/// One stored event (`webhook_events`).
#[derive(Clone, Debug)]
pub struct Event {
    pub id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub project: String,
    pub data: Value,
}

/// The header carrying [`signature`].
pub const SIGNATURE_HEADER: &str = "x-faultline-signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}" keyed by the secret>`, as Stripe does:
/// the timestamp is signed with the body, so a receiver can refuse old (replayed) requests.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The dashboard page of the event's run, when it has one and the hub knows its public URL.
pub fn run_link(public_url: Option<&str>, ev: &Event) -> Option<String> {
    let run = ev.data.get("runId")?.as_str()?;
    let mut url = url::Url::parse(public_url?).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["p", &ev.project, "runs", run]);
    Some(url.to_string())
}

/// The body for `format`.
pub fn body(format: Format, ev: &Event, link: Option<&str>) -> Vec<u8> {
    let v = match format {
        Format::Json => json_body(ev, link),
        Format::Slack => slack(ev, link),
        Format::Teams => teams(ev, link),
    };
    serde_json::to_vec(&v).expect("json values serialize")
}

fn json_body(ev: &Event, link: Option<&str>) -> Value {
    let mut data = ev.data.clone();
    if let (Some(l), Some(o)) = (link, data.as_object_mut()) {
        o.insert("url".into(), l.into());
    }
    json!({
        "id": ev.id,
        "type": ev.kind,
        "createdAt": ev.at,
        "project": ev.project,
        "data": data,
    })
}

/// A one-line headline for chat formats.
pub fn title(ev: &Event) -> String {
    let s = |k: &str| ev.data.get(k).and_then(Value::as_str).unwrap_or("?");
    match ev.kind.as_str() {
        "run.started" => format!("Run started: {} on {}", s("template"), s("delegate")),
        "run.finished" if s("state") == "PASSED" => format!("Run passed: {}", s("template")),
        "run.finished" => format!("Run failed: {}", s("template")),
        "run.aborted" => format!("Run aborted: {}", s("template")),
        "run.error" => format!("Run error: {}", s("template")),
        "guardrail.tripped" => format!("Guardrail tripped: {}", s("template")),
        "schedule.fire_failed" => format!(
            "Schedule {} could not start {}",
            s("schedule"),
            s("template")
        ),
        "delegate.disconnected" => format!("Delegate disconnected: {}", s("delegate")),
        "project.halted" => format!("Project halted: {}", ev.project),
        "webhook.test" => "Test notification from Faultline".to_string(),
        k => k.to_string(),
    }
}

/// Label and value of the event's fields worth showing in a chat message, in a fixed order.
pub fn facts(ev: &Event) -> Vec<(&'static str, String)> {
    const FIELDS: &[(&str, &str)] = &[
        ("project", "Project"),
        ("template", "Template"),
        ("templateVersion", "Version"),
        ("delegate", "Delegate"),
        ("state", "State"),
        ("score", "Score"),
        ("recoveryMs", "Recovery"),
        ("verdictReason", "Reason"),
        ("abortReason", "Abort reason"),
        ("schedule", "Schedule"),
        ("dueAt", "Due at"),
        ("reason", "Reason"),
        ("haltedBy", "Halted by"),
        ("replica", "Replica"),
    ];
    let mut out = Vec::new();
    for (key, label) in FIELDS {
        let text = match ev.data.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) if *key == "recoveryMs" => {
                format!("{:.1} s", n.as_f64().unwrap_or(0.0) / 1000.0)
            }
            Some(Value::Number(n)) if *key == "score" => {
                format!("{:.1}", n.as_f64().unwrap_or(0.0))
            }
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        out.push((*label, truncate(&text, 500)));
    }
    if let Some(g) = ev.data.get("guardrail") {
        out.push(("Guardrail", truncate(&g.to_string(), 500)));
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Slack incoming webhook: `text` (the notification's fallback) and `blocks` (header, section
/// with up to 10 fields, a button to the run).
fn slack(ev: &Event, link: Option<&str>) -> Value {
    let title = title(ev);
    let fields: Vec<Value> = facts(ev)
        .into_iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("`{}` · {}", ev.kind, ev.at.to_rfc3339())}]}),
    ];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(l) = link {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open run"}, "url": l}
        ]}));
    }
    json!({"text": title, "blocks": blocks})
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Microsoft Teams (incoming webhook or Workflows): a `message` with one Adaptive Card.
fn teams(ev: &Event, link: Option<&str>) -> Value {
    let facts: Vec<Value> = facts(ev)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": title(ev)},
            {"type": "TextBlock", "isSubtle": true, "spacing": "None", "wrap": true,
             "text": format!("{} · {}", ev.kind, ev.at.to_rfc3339())},
            {"type": "FactSet", "facts": facts},
        ],
    });
    if let Some(l) = link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open run", "url": l}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event {
            id: Uuid::nil(),
            kind: "run.finished".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            project: "team a".into(),
            data: json!({"runId": "0b5c", "template": "t<1>", "state": "PASSED", "score": 87.25, "recoveryMs": 1500}),
        }
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // echo -n '1700000000.{}' | openssl dgst -sha256 -hmac whsec
        assert_eq!(
            signature("whsec", 1_700_000_000, b"{}"),
            format!("t=1700000000,v1={}", openssl_hmac("whsec", "1700000000.{}"))
        );
    }

    /// The reference value, from the openssl command documented in docs/notifications.md.
    fn openssl_hmac(key: &str, msg: &str) -> String {
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", key, "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(msg.as_bytes())?;
                c.wait_with_output()
            })
            .expect("openssl runs");
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    #[test]
    fn run_link_encodes_the_project() {
        assert_eq!(
            run_link(Some("https://chaos.example.com/"), &ev()).as_deref(),
            Some("https://chaos.example.com/p/team%20a/runs/0b5c")
        );
        assert_eq!(run_link(None, &ev()), None);
    }

    #[test]
    fn slack_has_header_fields_and_button() {
        let v: Value =
            serde_json::from_slice(&body(Format::Slack, &ev(), Some("https://x/r"))).unwrap();
        assert_eq!(v["text"], "Run passed: t<1>");
        assert_eq!(v["blocks"][0]["type"], "header");
        let fields = v["blocks"][2]["fields"].as_array().unwrap();
        assert!(fields.iter().any(|f| f["text"] == "*Template*\nt&lt;1&gt;"));
        assert!(fields.iter().any(|f| f["text"] == "*Recovery*\n1.5 s"));
        assert!(fields
            .iter()
            .any(|f| f["text"] == "*Score*\n87.2" || f["text"] == "*Score*\n87.3"));
        assert_eq!(v["blocks"][3]["elements"][0]["url"], "https://x/r");
    }

    #[test]
    fn teams_is_an_adaptive_card_message() {
        let v: Value = serde_json::from_slice(&body(Format::Teams, &ev(), None)).unwrap();
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][2]["type"], "FactSet");
        assert!(a["content"].get("actions").is_none());
    }

    #[test]
    fn json_carries_the_link_in_data() {
        let v: Value =
            serde_json::from_slice(&body(Format::Json, &ev(), Some("https://x/r"))).unwrap();
        assert_eq!(v["type"], "run.finished");
        assert_eq!(v["project"], "team a");
        assert_eq!(v["data"]["url"], "https://x/r");
        assert_eq!(v["createdAt"], "2023-11-14T22:13:20Z");
    }
}
