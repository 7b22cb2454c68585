//! `callcast config check`: the effective settings, each with the layer it came from, secrets shown as `***`;
//! exit 2 when the configuration would not start (bad value, open API on a public address).

use crate::server::ServeArgs;

pub const EXIT_BAD_CONFIG: i32 = 2;

pub fn run(args: &ServeArgs) -> i32 {
    let figment = match args.figment() {
        Ok(f) => f,
        Err(e) => return bad(&e.to_string()),
    };
    let settings = match crate::config::extract(&figment) {
        Ok(s) => s,
        Err(e) => return bad(&e),
    };
    let serde_json::Value::Object(fields) = serde_json::to_value(&settings).unwrap_or_default() else {
        return bad("settings do not serialize");
    };
    for (key, value) in fields {
        let source = crate::config::source_of(&figment, &key);
        match toml::Value::try_from(&value) {
            Ok(v) if !value.is_null() => println!("{key} = {v}  # {source}"),
            _ => println!("# {key} is not set"),
        }
    }
    let (_, template_errors) = crate::broadcast::templates::load(settings.layouts_dir.as_deref(), &settings.assets_dir);
    for error in &template_errors {
        println!("warning: layout template rejected: {error}");
    }
    if let Err(e) = crate::server::check_exposure(settings.listen, &settings.tokens()) {
        return bad(&e.to_string());
    }
    0
}

fn bad(message: &str) -> i32 {
    eprintln!("bad configuration: {message}");
    EXIT_BAD_CONFIG
}
