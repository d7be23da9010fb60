//! The web UI's static files as the node serves them (`src/ui`): content
//! types, revalidation with ETags, the single-page app's fallback for deep
//! links, 404 for missing files, served without the API key while the API
//! still requires it, and `ui: false` (`--no-ui`) turning it off. The UI
//! itself is tested in a browser by `ui/tests/`.

mod common;

use common::{spawn_server_with, test_options};
use reqwest::header;
use reqwest::StatusCode;

async fn get(url: &str, etag: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.get(url);
    if let Some(e) = etag {
        req = req.header(header::IF_NONE_MATCH, e);
    }
    req.send().await.expect("server reachable")
}

fn header_of(r: &reqwest::Response, name: header::HeaderName) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_served_from_the_binary() {
    let mut options = test_options("sqlite::memory:".to_owned());
    options.ui = true;
    options.api_key = Some("k3y".to_owned());
    let server = spawn_server_with(options).await;
    let base = format!("http://{}", server.addr);

    let root = get(&format!("{base}/"), None).await;
    assert_eq!(root.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header_of(&root, header::LOCATION), "/ui/");

    let index = get(&format!("{base}/ui/"), None).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(
        header_of(&index, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&index, header::CACHE_CONTROL), "no-cache");
    let etag = header_of(&index, header::ETAG);
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let html = index.text().await.expect("body");
    assert!(html.contains(r#"src="/ui/app/main.js""#), "{html}");

    // A deep link is the app's route: index.html again.
    let deep = get(
        &format!("{base}/ui/namespaces/default/workflows/order-1?tab=history"),
        None,
    )
    .await;
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(header_of(&deep, header::ETAG), etag);

    let js = get(&format!("{base}/ui/app/main.js"), None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        header_of(&js, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    let js_etag = header_of(&js, header::ETAG);
    assert!(js.text().await.expect("body").contains("import"));
    let css = get(&format!("{base}/ui/app/style.css"), None).await;
    assert_eq!(
        header_of(&css, header::CONTENT_TYPE),
        "text/css; charset=utf-8"
    );

    let again = get(&format!("{base}/ui/app/main.js"), Some(&js_etag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("body").is_empty());
    let changed = get(&format!("{base}/ui/app/main.js"), Some("\"stale\"")).await;
    assert_eq!(changed.status(), StatusCode::OK);

    for missing in ["/ui/app/nope.js", "/ui/favicon.ico"] {
        let r = get(&format!("{base}{missing}"), None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    // The files hold no data; the API they call still wants the key.
    let api = get(&format!("{base}/api/v1/namespaces"), None).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ui_serves_none_of_it() {
    let options = test_options("sqlite::memory:".to_owned());
    assert!(!options.ui);
    let server = spawn_server_with(options).await;
    let base = format!("http://{}", server.addr);
    for path in ["/", "/ui/", "/ui/app/main.js"] {
        let r = get(&format!("{base}{path}"), None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    server.stop().await;
}
