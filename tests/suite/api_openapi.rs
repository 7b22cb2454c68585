//! The OpenAPI document describes every route of the router, and every example body in it is accepted.

use axum::http::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn every_route_is_described_and_every_example_works() {
    let (app, _dir) = crate::in_process::app(&[]);
    let (code, text) = crate::in_process::send(&app, "GET", "/v1/openapi.json", &[], "").await;
    assert_eq!(code, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );

    for route in callcast::api::routes() {
        let method = route.method.as_str().to_lowercase();
        let op = &doc["paths"][route.path][&method];
        assert!(
            op.is_object(),
            "{} {} is not in the OpenAPI document",
            route.method,
            route.path
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{} {}",
            route.method,
            route.path
        );
    }
    // Every schema referenced is defined.
    let refs: Vec<String> = text
        .split("#/components/schemas/")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_alphanumeric()).collect())
        .collect();
    assert!(!refs.is_empty());
    for name in refs {
        assert!(
            doc["components"]["schemas"][&name].is_object(),
            "{name} is referenced but not defined"
        );
    }

    // The examples, in the order a user would send them: create, then change and add to it.
    let mut id = String::new();
    let examples = callcast::api::openapi::examples();
    assert!(examples.len() >= 3);
    for (method, path, body) in examples {
        let documented = &doc["paths"][path][method.as_str().to_lowercase()]["requestBody"]["content"]
            ["application/json"]["example"];
        assert_eq!(documented, &body, "{method} {path}: the document shows the example");
        let uri = path.replace("{id}", &id);
        let (code, reply) = crate::in_process::send(
            &app,
            method.as_str(),
            &uri,
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await;
        assert!(code.is_success(), "{method} {path}: {code} {reply}");
        if id.is_empty() {
            id = serde_json::from_str::<Value>(&reply).expect("JSON")["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
    }
    let (code, _) = crate::in_process::send(&app, "DELETE", &format!("/v1/broadcasts/{id}"), &[], "").await;
    assert_eq!(code, StatusCode::OK);
}
