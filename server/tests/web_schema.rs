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

/// GraphiQL (and every GraphQL client that builds its types at run time) reads the schema with
/// graphql-js's standard introspection query (`getIntrospectionQuery`, saved here from the
/// dashboard's `graphql` package): the depth limit must let it through.
#[tokio::test]
async fn the_standard_introspection_query_is_within_the_limits() {
    let query = include_str!("fixtures/introspection.graphql");
    let res = faultline_hub::graphql::schema(None).execute(query).await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let data = res.data.into_json().unwrap();
    assert_eq!(data["__schema"]["queryType"]["name"], "QueryRoot");
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 20);
}
