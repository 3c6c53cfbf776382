//! `GET /`: the playground, one self-contained page (its CSS and script inline, no external
//! assets) that streams 1-4 strategies side by side from `/v1/completions`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("playground/page.html");
const CSS: &str = include_str!("playground/playground.css");
const JS: &str = include_str!("playground/playground.js");

static ASSEMBLED: LazyLock<String> =
    LazyLock::new(|| PAGE.replace("{{CSS}}", CSS).replace("{{JS}}", JS));

/// `GET /`.
pub async fn page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(ASSEMBLED.as_str()),
    )
}
