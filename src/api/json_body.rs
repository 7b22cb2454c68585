//! Parses a JSON body so that errors name the field (`video.width`, `outputs[1].url`), not a byte offset.

use super::error::ApiError;
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("body", "request body is empty; expected JSON"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request("body", format!("malformed JSON: {inner}"));
        }
        let message = strip_position(&inner.to_string());
        // serde reports an unknown `kind` tag at the enum itself; point at the tag.
        let field = if is_tagged_enum(&path)
            && (message.contains("unknown variant") || message.contains("missing field `kind`"))
        {
            join(&path, "kind")
        } else if let Some(name) = missing_field(&message)
            .or_else(|| unknown_field(&message))
            .or_else(|| named_field(&message))
        {
            join(&path, name)
        } else if path.is_empty() || path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::bad_request(field, message)
    })
}

/// Our `kind`-tagged enums: `source`, each `outputs[i]` and `overlays[i]`; serde reports their tag errors at the
/// enum itself.
fn is_tagged_enum(path: &str) -> bool {
    path == "source" || (["outputs[", "overlays["].iter().any(|p| path.starts_with(p)) && path.ends_with(']'))
}

fn join(path: &str, field: &str) -> String {
    if path == field || path.ends_with(&format!(".{field}")) {
        path.to_string()
    } else if path.is_empty() || path == "." {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde reports an unknown field of a `kind`-tagged enum (`overlays[0]`) at the enum, not at the field.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// A field's own check that names it first (`` `low_latency` must be ...``): reported at a tagged enum too.
fn named_field(message: &str) -> Option<&str> {
    message.strip_prefix('`')?.split('`').next()
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::request::BroadcastRequest;

    fn field_of(json: &str) -> String {
        parse::<BroadcastRequest>(json.as_bytes()).unwrap_err().field.unwrap()
    }

    #[test]
    fn errors_point_at_the_field() {
        assert_eq!(field_of("{not json"), "body");
        assert_eq!(field_of(""), "body");
        assert_eq!(field_of(r#"{"source":{"kind":"zoom"},"outputs":[]}"#), "source.kind");
        assert_eq!(field_of(r#"{"outputs":[]}"#), "source");
        assert_eq!(
            field_of(r#"{"source":{"kind":"room","room":"a"},"video":{"width":"big"},"outputs":[]}"#),
            "video.width"
        );
        assert_eq!(
            field_of(r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"ftp"}]}"#),
            "outputs[0].kind"
        );
        assert_eq!(
            field_of(r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls","low_latency":"yes"}]}"#),
            "outputs[0].low_latency"
        );
        let room = r#"{"source":{"kind":"room","room":"a"},"outputs":[],"#;
        assert_eq!(
            field_of(&format!(
                r#"{room}"overlays":[{{"kind":"text","text":"a","x":0.1,"y":0.1,"height":0.1,"blink":3}}]}}"#
            )),
            "overlays[0].blink"
        );
        assert_eq!(field_of(&format!(r#"{room}"colour":1}}"#)), "colour");
    }
}
