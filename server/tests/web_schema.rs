//! The dashboard's GraphQL types are generated from `web/schema.graphql`; this fails while that
//! file differs from the hub's schema (fix: `cd web && npm run schema`).
#[test]
fn web_schema_graphql_is_the_hubs_sdl() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("web/schema.graphql is readable");
    let sdl = faultline_hub::graphql::schema(None).sdl();
    assert!(
        committed == sdl,
        "web/schema.graphql is stale: run `cd web && npm run schema`, then `npm run build`"
    );
}
