//! The one place where errors become HTTP: OCI codes as `{"errors":[…]}` with the code's status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wharf_oci::ErrorCode;
use wharf_registry::RegistryError;

/// An error answered on the registry API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) inner: RegistryError,
    /// Extra headers some errors carry (`Range` with a 416, `Content-Range` on reads).
    pub(crate) headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl From<RegistryError> for ApiError {
    fn from(inner: RegistryError) -> Self {
        Self {
            inner,
            headers: Vec::new(),
        }
    }
}

impl From<wharf_oci::NameError> for ApiError {
    fn from(e: wharf_oci::NameError) -> Self {
        RegistryError::from(e).into()
    }
}

impl ApiError {
    pub(crate) fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.headers.push((name, v));
        }
        self
    }
}

pub(crate) fn error_body(code: ErrorCode, message: &str, detail: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({
        "errors": [{ "code": code.as_str(), "message": message, "detail": detail }]
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = match self.inner.code() {
            Some(code) => {
                let detail = match &self.inner {
                    RegistryError::ManifestBlobUnknown(missing) => {
                        serde_json::json!({ "missing": missing })
                    }
                    _ => serde_json::Value::Null,
                };
                error_body(code, &self.inner.to_string(), detail)
            }
            None => {
                tracing::error!(error = %self.inner, "request failed");
                let body = serde_json::json!({
                    "errors": [{ "code": "UNKNOWN", "message": "internal server error; the server log has the cause", "detail": null }]
                });
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response()
            }
        };
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

/// `429 TOOMANYREQUESTS` with `Retry-After`, for a caller who failed to sign in too often.
pub(crate) fn throttled(wait: u64) -> Response {
    let mut resp = error_body(
        ErrorCode::TooManyRequests,
        &wharf_hub::HubError::Throttled(wait).to_string(),
        serde_json::Value::Null,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    resp
}
