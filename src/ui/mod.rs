//! The web UI's static files, embedded in the binary at compile time
//! (`build.rs` lists `ui/index.html` and `ui/app/**`) and served under
//! `/ui/`. The UI is a client of the public REST API only; these files hold
//! no data, so they are served without the API key (the UI asks for it).
//! Any path under `/ui/` that is not a file is a route of the single-page
//! app and gets `index.html`, so deep links work. Files are revalidated on
//! every load (`no-cache` with a content-hash ETag), as their names carry
//! no hash.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

/// Where the UI is served.
pub const PREFIX: &str = "/ui/";

/// `(path under ui/, bytes)`, written by build.rs.
const ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

struct Asset {
    bytes: &'static [u8],
    etag: HeaderValue,
    content_type: &'static str,
}

fn assets() -> &'static HashMap<&'static str, Asset> {
    static ASSET_MAP: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    ASSET_MAP.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(path, bytes)| {
                let digest = Sha256::digest(bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                let etag = HeaderValue::from_str(&format!("\"{hex}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
                let asset = Asset {
                    bytes,
                    etag,
                    content_type: content_type(path),
                };
                (*path, asset)
            })
            .collect()
    })
}

/// The media type of a UI file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `/` and `/ui` redirect to `/ui/`; `/ui/{path}` serves the file or the app.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary(PREFIX) }))
        .route("/ui", get(|| async { Redirect::permanent(PREFIX) }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                serve(&path, &headers)
            }),
        )
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let assets = assets();
    let asset = match assets.get(path) {
        Some(a) => a,
        // A missing file with an extension is a missing file, not a route.
        None if path.starts_with("app/")
            || path.rsplit('/').next().is_some_and(|s| s.contains('.')) =>
        {
            return (StatusCode::NOT_FOUND, "no such file in the web UI").into_response();
        }
        None => match assets.get("index.html") {
            Some(a) => a,
            None => return (StatusCode::NOT_FOUND, "the web UI was not built in").into_response(),
        },
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Everything ships in the binary: no script, style or font from elsewhere.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(
            content_type("app/main.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("app/style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_index_and_the_app_are_embedded() {
        assert!(assets().contains_key("index.html"));
        assert!(assets().contains_key("app/main.js"));
    }
}
