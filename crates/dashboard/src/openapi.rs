//! The OpenAPI 3.1 document of the JSON API, served at `/api/v1/openapi.json`. It is
//! written by hand next to the handlers (`openapi.json`); the test suite runs
//! schemathesis against it, so a route or a shape that drifts from it fails there.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_naming_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for route in [
            "/overview",
            "/queues",
            "/queues/{queue}",
            "/queues/{queue}/pause",
            "/queues/{queue}/resume",
            "/jobs",
            "/jobs/{id}",
            "/jobs/{queue}/{id}",
            "/jobs/{queue}/{id}/retry",
            "/jobs/{queue}/{id}/cancel",
            "/dead/retry",
            "/workers",
            "/schedules",
            "/schedules/{name}/pause",
            "/schedules/{name}/resume",
            "/schedules/{name}/trigger",
            "/alerts",
            "/flows/{id}",
            "/batches/{id}",
        ] {
            assert!(paths.contains_key(route), "{route} is not documented");
        }
    }
}
