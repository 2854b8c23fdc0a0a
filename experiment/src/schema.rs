//! The JSON Schema of the experiment template (`faultline schema template`), so editors check
//! templates as they are typed.
//!
//! It is derived with schemars from the very types serde reads, so names, unknown fields,
//! defaults, enums and doc comments cannot drift from the parser. This module adds only what a
//! derive cannot see: the spellings serde also accepts (`alias`), each fault kind's `target` and
//! `params` (taken from [`FaultSpec`]'s own schema), and the root's `$id` and title.
//!
//! The schema is a first line of defence and is meant to be no stricter than the parser (the
//! hub's tests run shipped and documented templates, and common mistakes, through both). Checks
//! that need code (did-you-mean hints, compiling regexes, guardrails naming a real probe, plan
//! length) stay in [`Experiment::validate`](crate::Experiment::validate).
use crate::{faults::FaultSpec, Experiment};
use schemars::{
    generate::SchemaSettings, transform::Transform, JsonSchema, Schema, SchemaGenerator,
};
use serde_json::{json, Map, Value};

/// `$id` of the schema. Editors use the file they are pointed at; this only names it.
pub const ID: &str = "https://faultline.dev/schemas/template.schema.json";
/// `title` of the schema, shown by editors.
pub const TITLE: &str = "Faultline experiment template";

/// What [`StatusSpec::Text`](crate::probes::StatusSpec) accepts: a class (`2xx`), a range
/// (`200-299`) or one status, all between 100 and 599 (a range's order is checked by validation).
pub const STATUS_TEXT: &str =
    r"^\s*(\+?0*[1-5](xx|XX)|\+?0*[1-5][0-9]{2}\s*-\s*\+?0*[1-5][0-9]{2}|\+?0*[1-5][0-9]{2})\s*$";

/// `host:port` as [`split_host_port`](crate::probes::split_host_port) reads it (the port's range
/// is checked by validation).
pub const HOST_PORT: &str = r"^.+:\+?[0-9]+$";

/// Draft-07: the newest draft yaml-language-server (VS Code's YAML extension) fully supports.
pub fn template() -> Value {
    let mut g = SchemaSettings::draft07().into_generator();
    let kinds = fault_kinds(&mut g);
    let mut root = g.into_root_schema_for::<Experiment>();
    for def in ["Step", "FaultStep"] {
        let step = root
            .pointer_mut(&format!("/definitions/{def}"))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("the schema has no definition {def}"));
        step.insert("allOf".into(), kinds.iter().map(FaultKind::rule).collect());
    }
    // The kind rules were added after the draft-07 transforms ran: make sure no `$ref` in them
    // has siblings, which draft-07 would ignore.
    schemars::transform::RemoveRefSiblings::default().transform(&mut root);
    let top = root.ensure_object();
    top.insert("$id".into(), ID.into());
    top.insert("title".into(), TITLE.into());
    top.insert(
        "description".into(),
        "A Faultline experiment (apiVersion faultline.dev/v1, kind Experiment). \
         Reference: docs/template-reference.md."
            .into(),
    );
    let mut schema = root.to_value();
    unwrap_descriptions(&mut schema);
    schema
}

/// Doc comments keep rustdoc's line breaks; editors show descriptions as flowing text, so a
/// single newline becomes a space (a blank line stays a paragraph break).
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                match v {
                    Value::String(s) if k == "description" => {
                        *s = s
                            .split("\n\n")
                            .map(|p| p.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// One fault kind as the template writes it.
struct FaultKind {
    kind: String,
    description: Value,
    /// Schemas of `target`, `params`, ...
    properties: Map<String, Value>,
    /// What a step of this kind must give.
    required: Value,
}

impl FaultKind {
    /// `if fault is this kind then target and params have its shape`.
    fn rule(&self) -> Value {
        let mut properties = self.properties.clone();
        if let Some(p) = properties.get_mut("params") {
            // An empty `params:` (null) is read as `{}`.
            *p = json!({"anyOf": [{"type": "null"}, p.take()]});
        }
        json!({
            "if": {"properties": {"fault": {"const": self.kind}}, "required": ["fault"]},
            "then": {"properties": properties, "required": self.required},
        })
    }
}

/// Every fault kind, from the variants of [`FaultSpec`] (`kind` there is `fault` here).
fn fault_kinds(g: &mut SchemaGenerator) -> Vec<FaultKind> {
    let spec = FaultSpec::json_schema(g);
    let variants = spec
        .get("oneOf")
        .and_then(Value::as_array)
        .expect("FaultSpec's schema is a oneOf of its variants");
    variants
        .iter()
        .map(|v| {
            let mut properties = v["properties"].as_object().cloned().unwrap_or_default();
            let kind = properties
                .remove("kind")
                .and_then(|k| k["const"].as_str().map(str::to_owned))
                .expect("each FaultSpec variant has a constant kind");
            FaultKind {
                kind,
                description: v.get("description").cloned().unwrap_or_default(),
                properties,
                required: v["required"].clone(),
            }
        })
        .collect()
}

/// The schema of a step's `fault`: one of the kinds, each with its description.
pub fn fault_kind(g: &mut SchemaGenerator) -> Schema {
    let kinds: Vec<Value> = fault_kinds(g)
        .into_iter()
        .map(|k| json!({"const": k.kind, "description": k.description}))
        .collect();
    schemars::json_schema!({"type": "string", "oneOf": kinds})
}

/// A fault's `target` or `params`: an object whose shape the kind rules give, or empty (null).
pub fn object_or_null(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": ["object", "null"]})
}

/// Exactly one of `run` (a non-empty argv) or `shell`, for commands.
pub fn run_or_shell() -> Value {
    json!([
        {"required": ["run"], "properties": {"run": {"minItems": 1}}},
        {"required": ["shell"]}
    ])
}

/// Adds spellings that serde also accepts (`#[serde(alias)]`, which schemars does not see) to a
/// derived string enum. Editors accept them but, with `doNotSuggest`, offer only the canonical
/// names.
pub fn also_accept(aliases: &'static [&'static str]) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        // schemars writes a unit enum as `enum` when no variant has docs, else as `oneOf` consts.
        if let Some(Value::Array(names)) = object.get_mut("enum") {
            names.extend(aliases.iter().map(|a| json!(a)));
        } else if let Some(Value::Array(one_of)) = object.get_mut("oneOf") {
            one_of.push(json!({
                "type": "string",
                "enum": aliases,
                "description": "Other accepted spellings of the same values.",
                "doNotSuggest": true,
            }));
        }
    }
}
