//! `GET /v1/openapi.json`: the OpenAPI 3.1 description, built from the router's route table and the request and
//! response types (utoipa schemas), so a route cannot exist without being described.

use super::broadcasts::PatchRequest;
use super::{routes, Access, RouteInfo};
use crate::broadcast::request::{BroadcastRequest, OutputRequest};
use crate::broadcast::status::BroadcastStatus;
use axum::http::Method;
use axum::Json;
use serde_json::{json, Value};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

/// Example bodies; a test sends each one and expects it accepted.
pub fn examples() -> Vec<(Method, &'static str, Value)> {
    vec![
        (
            Method::POST,
            "/v1/broadcasts",
            json!({"source": {"kind": "room", "room": "demo"}, "layout": {"template": "grid"},
                   "video": {"width": 1280, "height": 720, "fps": 30, "bitrate_kbps": 2500, "keyframe_interval_s": 2, "preset": "superfast", "passthrough": true},
                   "outputs": [{"kind": "hls", "segment_seconds": 2, "window": 6}]}),
        ),
        (
            Method::PATCH,
            "/v1/broadcasts/{id}",
            json!({"layout": {"template": "speaker"}}),
        ),
        (
            Method::POST,
            "/v1/broadcasts/{id}/outputs",
            json!({"kind": "rtmp", "url": "rtmp://127.0.0.1:1935/live/stream-key"}),
        ),
    ]
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        _ => HttpMethod::Get,
    }
}

/// The JSON schema a route takes, by name, if it takes JSON.
fn request_schema(route: &RouteInfo) -> Option<&'static str> {
    match (route.method.clone(), route.path) {
        (Method::POST, "/v1/broadcasts") => Some("BroadcastRequest"),
        (Method::PATCH, "/v1/broadcasts/{id}") => Some("PatchRequest"),
        (Method::POST, "/v1/broadcasts/{id}/outputs") => Some("OutputRequest"),
        _ => None,
    }
}

fn operation(route: &RouteInfo) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new().summary(Some(route.summary));
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
    }
    if let Some(schema) = request_schema(route) {
        let example = examples()
            .into_iter()
            .find(|(m, p, _)| *m == route.method && *p == route.path)
            .map(|(_, _, e)| e);
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .example(example)
            .build();
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", content)
                .required(Some(Required::True))
                .build(),
        ));
    }
    let whep = route.path.starts_with("/v1/broadcasts/{id}/whep");
    if (route.path.starts_with("/v1/rooms/") || whep) && route.method == Method::POST {
        let mut body = RequestBodyBuilder::new().content("application/sdp", ContentBuilder::new().build());
        // Plain RTP participants also describe their tracks in JSON (README, "Plain RTP participants").
        if route.path.ends_with("/rtp") {
            body = body.content("application/json", ContentBuilder::new().build());
        }
        op = op.request_body(Some(body.build()));
    }
    if whep && route.method == Method::POST {
        // WHEP: the answer, and the viewer's URL (its DELETE ends it) in `Location`.
        let answer = ResponseBuilder::new()
            .description("The SDP answer; `Location`: the viewer")
            .content("application/sdp", ContentBuilder::new().build());
        op = op.response("201", answer.build()).response(
            "503",
            ResponseBuilder::new()
                .description("`max_viewers` are watching; `Retry-After`")
                .build(),
        );
    }
    let ok = if route.path.starts_with("/v1/broadcasts") && request_schema(route) != Some("OutputRequest") && !whep {
        ResponseBuilder::new().description("The broadcast's status").content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("BroadcastStatus")))
                .build(),
        )
    } else {
        ResponseBuilder::new().description("Success")
    };
    op = op.response("200", ok.build()).response(
        "4XX",
        ResponseBuilder::new().description("`{\"error\", \"field\"}`").build(),
    );
    if route.access != Access::Public {
        op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    }
    op.build()
}

pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in routes() {
        paths.add_path_operation(route.path, vec![http_method(&route.method)], operation(&route));
    }
    let components = ComponentsBuilder::new()
        .schema("BroadcastRequest", BroadcastRequest::schema())
        .schema("OutputRequest", OutputRequest::schema())
        .schema("PatchRequest", PatchRequest::schema())
        .schema("BroadcastStatus", BroadcastStatus::schema())
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    let mut schemas = Vec::new();
    BroadcastRequest::schemas(&mut schemas);
    BroadcastStatus::schemas(&mut schemas);
    PatchRequest::schemas(&mut schemas);
    let components = components.schemas_from_iter(schemas).build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("callcast")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Turns a live video call into a broadcast (RTMP and HLS)."))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

pub async fn serve() -> Json<OpenApi> {
    Json(document())
}
