//! The `/v2/` registry API: one catch-all route, `Endpoint::parse`, then one `match`.
//! Handlers parse into domain types, call one registry method and build the response.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use wharf_hub::PullPolicy;
use wharf_oci::{
    Digest, ErrorCode, MAX_MANIFEST_BYTES, RangeError, Reference, RepoName, UploadId, accepts,
    parse_content_range, parse_range_header,
};
use wharf_registry::RegistryError;
use wharf_storage::ByteStream;

use super::auth;
use super::endpoint::Endpoint;
use super::error::{ApiError, error_body};
use super::limits;
use crate::app::AppState;

type ApiResult = Result<Response, ApiError>;

const DIGEST_HEADER: &str = "docker-content-digest";
const UPLOAD_UUID_HEADER: &str = "docker-upload-uuid";
/// Default and largest page of a tag list or catalog.
const DEFAULT_PAGE: u32 = 1000;
const MAX_PAGE: u32 = 10_000;

/// Entry point for every request under `/v2/`.
pub(crate) async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    let rest = path
        .strip_prefix("/v2/")
        .or_else(|| (path == "/v2").then_some(""));
    if let Some(api) = rest.filter(|r| super::hub_api::owns(r)) {
        let api = api.to_owned();
        return super::hub_api::dispatch(&state, &api, req).await;
    }
    let Some(endpoint) = rest.and_then(Endpoint::parse) else {
        return error_body(
            ErrorCode::NameUnknown,
            "no registry endpoint at this path; see the OCI distribution spec for /v2/ routes",
            serde_json::Value::Null,
        );
    };
    let method = req.method().clone();
    let mut caller = auth::Caller::Anonymous;
    if state.auth {
        let checked =
            match auth::caller(&state, req.headers(), super::client_ip(&state, &req)).await {
                Ok(c) => match auth::need(&method, &endpoint) {
                    Some(need) => auth::check(&state, &c, need).await.map(|()| c),
                    None => Ok(c),
                },
                Err(refusal) => Err(refusal),
            };
        match checked {
            Ok(c) => caller = c,
            Err(refusal) => return auth::refusal_response(&state, req.headers(), refusal),
        }
    }
    let result = route(&state, &caller, &method, endpoint, req).await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn route(
    state: &AppState,
    caller: &auth::Caller,
    method: &Method,
    endpoint: Endpoint,
    req: Request,
) -> ApiResult {
    use Endpoint as E;
    let query = Query::parse(req.uri().query());
    // An archived repository serves pulls and refuses every change to its content.
    if let (Method::PUT | Method::DELETE, E::Manifest { name, .. } | E::Blob { name, .. })
    | (Method::POST, E::UploadStart { name })
    | (Method::PATCH | Method::PUT, E::Upload { name, .. }) = (method.clone(), &endpoint)
    {
        let name = parse_name(name)?;
        if let Err(e) = state.hub.check_not_archived(&name).await {
            return Err(match e {
                wharf_hub::HubError::Conflict(m) => RegistryError::Denied(m),
                other => RegistryError::Internal(other.to_string()),
            }
            .into());
        }
    }
    match (method.clone(), endpoint) {
        (Method::GET | Method::HEAD, E::Base) => Ok((StatusCode::OK, Json("{}")).into_response()),
        (Method::GET, E::Catalog) => catalog(state, &query).await,
        (Method::GET, E::Tags { name }) => tags(state, &parse_name(&name)?, &query).await,
        (Method::GET | Method::HEAD, E::Manifest { name, reference }) => {
            let name = parse_name(&name)?;
            let head = method == Method::HEAD;
            let ip = super::client_ip(state, &req);
            let policy = state
                .hub
                .pull_policy(name.namespace(), caller.user_name(), ip)
                .await
                .map_err(|e| RegistryError::Internal(e.to_string()))?;
            let result = match policy {
                PullPolicy::Exempt => {
                    manifest_get(state, &name, &reference, req.headers(), head).await
                }
                PullPolicy::Limited(limit) => {
                    // A pull is a manifest GET; a HEAD shows the quota without using it.
                    let quota = if head {
                        state.hub.peek_pull(&limit).await
                    } else {
                        state.hub.take_pull(&limit).await
                    };
                    if !quota.allowed {
                        return Ok(limits::pull_refused(
                            &limit,
                            &quota,
                            state.hub.authenticated_pull_limit(),
                        ));
                    }
                    match manifest_get(state, &name, &reference, req.headers(), head).await {
                        Ok(mut resp) => {
                            limits::set_pull_headers(&mut resp, &limit, &quota);
                            Ok(resp)
                        }
                        Err(e) => {
                            if !head {
                                state.hub.refund_pull(&limit);
                            }
                            Err(e)
                        }
                    }
                }
            };
            if let Ok(resp) = &result {
                let digest = resp
                    .headers()
                    .get(DIGEST_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                capture(state, caller, &req, &name, &reference, digest, head, false);
            }
            result
        }
        (Method::PUT, E::Manifest { name, reference }) => {
            manifest_put(state, &parse_name(&name)?, &reference, req).await
        }
        (Method::DELETE, E::Manifest { name, reference }) => {
            let name = parse_name(&name)?;
            let reference: Reference = reference.parse()?;
            state.registry.manifest_delete(&name, &reference).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::GET | Method::HEAD, E::Blob { name, digest }) => {
            let name = parse_name(&name)?;
            let digest = parse_digest(&digest)?;
            let head = method == Method::HEAD;
            let result = blob_get(state, &name, &digest, req.headers(), head).await;
            if result.is_ok() && !head {
                let d = digest.to_string();
                capture(state, caller, &req, &name, &d, &d, false, true);
            }
            result
        }
        (Method::DELETE, E::Blob { name, digest }) => {
            state
                .registry
                .blob_delete(&parse_name(&name)?, &parse_digest(&digest)?)
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::POST, E::UploadStart { name }) => {
            upload_start(state, caller, &parse_name(&name)?, &query, req).await
        }
        (Method::GET, E::Upload { name, id }) => {
            let name = parse_name(&name)?;
            let id = parse_upload_id(&id)?;
            let offset = state.registry.upload_status(&name, &id).await?;
            Ok(upload_progress(StatusCode::NO_CONTENT, &name, &id, offset))
        }
        (Method::PATCH, E::Upload { name, id }) => {
            upload_patch(state, &parse_name(&name)?, &parse_upload_id(&id)?, req).await
        }
        (Method::PUT, E::Upload { name, id }) => {
            upload_put(
                state,
                &parse_name(&name)?,
                &parse_upload_id(&id)?,
                &query,
                req,
            )
            .await
        }
        (Method::DELETE, E::Upload { name, id }) => {
            state
                .registry
                .upload_cancel(&parse_name(&name)?, &parse_upload_id(&id)?)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET, E::Referrers { name, digest }) => {
            referrers(state, &parse_name(&name)?, &parse_digest(&digest)?, &query).await
        }
        (m, _) => Ok(error_body(
            ErrorCode::MethodNotAllowed,
            &format!("method {m} is not allowed on this registry endpoint"),
            serde_json::Value::Null,
        )),
    }
}

/// A static JSON body.
struct Json(&'static str);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

fn parse_name(s: &str) -> Result<RepoName, ApiError> {
    Ok(s.parse::<RepoName>()?)
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse::<Digest>()
        .map_err(|e| RegistryError::DigestInvalid(e.to_string()).into())
}

fn parse_upload_id(s: &str) -> Result<UploadId, ApiError> {
    s.parse::<UploadId>()
        .map_err(|_| RegistryError::BlobUploadUnknown(s.chars().take(64).collect()).into())
}

/// The query string, decoded; repeated keys keep the first value.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            q.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .take(32)
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The page size `n`: default when absent, capped at the maximum.
    fn page_size(&self) -> Result<u32, ApiError> {
        match self.get("n") {
            None | Some("") => Ok(DEFAULT_PAGE),
            Some(v) => v.parse::<u32>().map(|n| n.min(MAX_PAGE)).map_err(|_| {
                RegistryError::Unsupported(format!(
                    "query parameter n={v:?} is not a number; use n=1 to n={MAX_PAGE}"
                ))
                .into()
            }),
        }
    }
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(TryStreamExt::map_err(
        body.into_data_stream(),
        std::io::Error::other,
    ))
}

/// Whether a request carries a body (so an empty final PUT skips the append).
fn has_body(req: &Request) -> bool {
    use axum::body::HttpBody as _;
    let hint = req.body().size_hint();
    !(req.body().is_end_stream() || hint.exact() == Some(0))
}

/// The announced body length, when the client sent one.
fn content_length(req: &Request) -> Option<u64> {
    header_str(req.headers(), header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

fn range_header(offset: u64) -> String {
    // An empty upload reports `0-0`, as Distribution does and clients expect.
    format!("0-{}", offset.saturating_sub(1))
}

fn upload_location(name: &RepoName, id: &UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn upload_progress(status: StatusCode, name: &RepoName, id: &UploadId, offset: u64) -> Response {
    let mut resp = status.into_response();
    set(&mut resp, "location", &upload_location(name, id));
    set(&mut resp, "range", &range_header(offset));
    set(&mut resp, UPLOAD_UUID_HEADER, id.as_str());
    set(&mut resp, "content-length", "0");
    resp
}

fn blob_created(name: &RepoName, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    set(&mut resp, "location", &format!("/v2/{name}/blobs/{digest}"));
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    set(&mut resp, "content-length", "0");
    resp
}

fn link_next(path: &str, n: u32, last: &str) -> String {
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

// ---- listings ----

async fn catalog(state: &AppState, q: &Query) -> ApiResult {
    let n = q.page_size()?;
    let page = if n == 0 {
        wharf_registry::Page {
            items: vec![],
            more: false,
        }
    } else {
        state.registry.catalog(q.get("last"), n).await?
    };
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "repositories": page.items }).to_string(),
    )
        .into_response();
    if page.more
        && let Some(last) = page.items.last()
    {
        set(&mut resp, "link", &link_next("/v2/_catalog", n, last));
    }
    Ok(resp)
}

async fn tags(state: &AppState, name: &RepoName, q: &Query) -> ApiResult {
    let n = q.page_size()?;
    let page = if n == 0 {
        state
            .registry
            .tags(name, None, 0)
            .await
            .map(|_| wharf_registry::Page {
                items: vec![],
                more: false,
            })?
    } else {
        state.registry.tags(name, q.get("last"), n).await?
    };
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "name": name.as_str(), "tags": page.items }).to_string(),
    )
        .into_response();
    if page.more
        && let Some(last) = page.items.last()
    {
        set(
            &mut resp,
            "link",
            &link_next(&format!("/v2/{name}/tags/list"), n, last),
        );
    }
    Ok(resp)
}

async fn referrers(state: &AppState, name: &RepoName, digest: &Digest, q: &Query) -> ApiResult {
    let artifact_type = q.get("artifactType").filter(|t| !t.is_empty());
    let index = state
        .registry
        .referrers(name, digest, artifact_type)
        .await?;
    let mut resp = (
        [(header::CONTENT_TYPE, wharf_oci::MediaType::OCI_INDEX)],
        index.to_string(),
    )
        .into_response();
    if artifact_type.is_some() {
        set(&mut resp, "oci-filters-applied", "artifactType");
    }
    Ok(resp)
}

// ---- analytics ----

/// Hands a request of a pull to analytics (a queue; never waits).
#[expect(
    clippy::too_many_arguments,
    reason = "one call per pull endpoint, each naming what it saw"
)]
fn capture(
    state: &AppState,
    caller: &auth::Caller,
    req: &Request,
    name: &RepoName,
    reference: &str,
    digest: &str,
    head: bool,
    blob: bool,
) {
    if !state.analytics.enabled() {
        return;
    }
    let user_agent = header_str(req.headers(), header::USER_AGENT).unwrap_or_default();
    state.analytics.capture(wharf_hub::analytics::PullSeen {
        at_ms: wharf_hub::analytics::now_ms(),
        repo: name.as_str(),
        reference,
        digest,
        head,
        blob,
        user: caller.user_name(),
        ip: super::client_ip(state, req),
        user_agent,
    });
}

// ---- manifests ----

async fn manifest_get(
    state: &AppState,
    name: &RepoName,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let reference: Reference = reference.parse()?;
    let m = state.registry.manifest_get(name, &reference).await?;
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if !accepts(accept, &m.media_type) {
        return Err(RegistryError::ManifestUnknown(format!(
            "{reference} (it is a {}, which this request's Accept header does not list)",
            m.media_type
        ))
        .into());
    }
    if !head {
        let tag = match &reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        state.hub.record_pull(name.as_str(), tag);
    }
    let mut resp = if head {
        let mut r = StatusCode::OK.into_response();
        set(&mut r, "content-length", &m.payload.len().to_string());
        r
    } else {
        Body::from(m.payload.clone()).into_response()
    };
    set(&mut resp, "content-type", &m.media_type);
    set(&mut resp, DIGEST_HEADER, &m.digest);
    set(&mut resp, "etag", &format!("\"{}\"", m.digest));
    Ok(resp)
}

async fn manifest_put(
    state: &AppState,
    name: &RepoName,
    reference: &str,
    req: Request,
) -> ApiResult {
    let reference: Reference = reference.parse()?;
    let content_type = header_str(req.headers(), header::CONTENT_TYPE).map(str::to_owned);
    let too_large = || {
        RegistryError::ManifestTooLarge(format!(
            "manifest is larger than {MAX_MANIFEST_BYTES} bytes, the most wharf accepts"
        ))
    };
    if let Some(len) =
        header_str(req.headers(), header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > MAX_MANIFEST_BYTES as u64
    {
        return Err(too_large().into());
    }
    let body = http_body_util::Limited::new(req.into_body(), MAX_MANIFEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::from(too_large())
            } else {
                RegistryError::ManifestInvalid(format!("the manifest body could not be read: {e}"))
                    .into()
            }
        })?
        .to_bytes();
    let put = state
        .registry
        .manifest_put(name, &reference, content_type.as_deref(), body)
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    set(
        &mut resp,
        "location",
        &format!("/v2/{name}/manifests/{}", put.digest),
    );
    set(&mut resp, DIGEST_HEADER, &put.digest.to_string());
    set(&mut resp, "content-length", "0");
    if let Some(subject) = put.subject {
        set(&mut resp, "oci-subject", &subject.to_string());
    }
    Ok(resp)
}

// ---- blobs ----

async fn blob_get(
    state: &AppState,
    name: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    if head {
        let size = state.registry.blob_stat(name, digest).await?;
        let mut resp = StatusCode::OK.into_response();
        set(&mut resp, "content-length", &size.to_string());
        set(&mut resp, "content-type", "application/octet-stream");
        set(&mut resp, DIGEST_HEADER, &digest.to_string());
        set(&mut resp, "accept-ranges", "bytes");
        return Ok(resp);
    }
    if let Some(url) = state.registry.blob_redirect(name, digest).await? {
        // The store serves the bytes (and any Range) itself; the URL expires.
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        set(&mut resp, "location", &url);
        set(&mut resp, DIGEST_HEADER, &digest.to_string());
        return Ok(resp);
    }
    let range_value = header_str(headers, header::RANGE).map(str::to_owned);
    let mut unsatisfiable_size = None;
    let blob = state
        .registry
        .blob_get(name, digest, |size| {
            match range_value.as_deref().map(|v| parse_range_header(v, size)) {
                None | Some(Err(RangeError::Malformed(_))) => Ok(None), // ignored, as RFC 9110 says
                Some(Ok(r)) => Ok(Some(r)),
                Some(Err(e @ RangeError::Unsatisfiable(..))) => {
                    unsatisfiable_size = Some(size);
                    Err(RegistryError::RangeNotSatisfiable(e.to_string()))
                }
            }
        })
        .await
        .map_err(|e| {
            let e = ApiError::from(e);
            match unsatisfiable_size {
                Some(size) => e.with_header(header::CONTENT_RANGE, format!("bytes */{size}")),
                None => e,
            }
        })?;
    let (status, len) = match blob.range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, blob.size),
    };
    let mut resp = (status, Body::from_stream(blob.stream)).into_response();
    set(&mut resp, "content-length", &len.to_string());
    set(&mut resp, "content-type", "application/octet-stream");
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    set(&mut resp, "accept-ranges", "bytes");
    if let Some(r) = blob.range {
        set(
            &mut resp,
            "content-range",
            &format!("bytes {}-{}/{}", r.start, r.end, blob.size),
        );
    }
    Ok(resp)
}

// ---- uploads ----

async fn upload_start(
    state: &AppState,
    caller: &auth::Caller,
    name: &RepoName,
    q: &Query,
    req: Request,
) -> ApiResult {
    if let Some(mount) = q.get("mount") {
        // A digest or source we cannot use falls back to a normal upload, as the spec allows.
        if let (Ok(digest), Some(Ok(from))) = (
            mount.parse::<Digest>(),
            q.get("from").map(str::parse::<RepoName>),
        ) && may_pull_from(state, caller, &from).await
            && state
                .registry
                .blob_mount(name, &from, &digest)
                .await?
                .is_some()
        {
            return Ok(blob_created(name, &digest));
        }
    }
    if let Some(d) = q.get("digest") {
        let digest = parse_digest(d)?;
        let size_hint = content_length(&req);
        let done = state
            .registry
            .blob_put_monolithic(name, &digest, body_stream(req.into_body()), size_hint)
            .await?;
        return Ok(blob_created(name, &done.digest));
    }
    let id = state.registry.upload_start(name).await?;
    Ok(upload_progress(StatusCode::ACCEPTED, name, &id, 0))
}

/// A mount links a blob from another repository: the caller must be allowed to pull there.
async fn may_pull_from(state: &AppState, caller: &auth::Caller, from: &RepoName) -> bool {
    !state.auth
        || auth::allowed(state, caller, from)
            .await
            .is_ok_and(|a| a.pull)
}

fn content_range(req: &Request) -> Result<Option<wharf_oci::ByteRange>, ApiError> {
    match header_str(req.headers(), header::CONTENT_RANGE) {
        None => Ok(None),
        Some(v) => parse_content_range(v).map(Some).map_err(|e| {
            RegistryError::BlobUploadInvalid(format!("Content-Range header: {e}")).into()
        }),
    }
}

async fn upload_patch(state: &AppState, name: &RepoName, id: &UploadId, req: Request) -> ApiResult {
    let range = content_range(&req)?;
    let size_hint = content_length(&req);
    let result = state
        .registry
        .upload_append(name, id, range, body_stream(req.into_body()), size_hint)
        .await;
    match result {
        Ok(offset) => Ok(upload_progress(StatusCode::ACCEPTED, name, id, offset)),
        Err(e) => Err(with_upload_position(e, name, id)),
    }
}

/// A 416 tells the client where the upload stands, so it can resume.
fn with_upload_position(e: RegistryError, name: &RepoName, id: &UploadId) -> ApiError {
    match e.upload_offset() {
        Some(offset) => ApiError::from(e)
            .with_header(header::RANGE, range_header(offset))
            .with_header(header::LOCATION, upload_location(name, id))
            .with_header(
                header::HeaderName::from_static(UPLOAD_UUID_HEADER),
                id.to_string(),
            ),
        None => e.into(),
    }
}

async fn upload_put(
    state: &AppState,
    name: &RepoName,
    id: &UploadId,
    q: &Query,
    req: Request,
) -> ApiResult {
    let Some(d) = q.get("digest") else {
        return Err(RegistryError::DigestInvalid(
            "the request that completes an upload needs ?digest=<algorithm:hex> naming the blob's digest".into(),
        )
        .into());
    };
    let digest = parse_digest(d)?;
    let range = content_range(&req)?;
    let size_hint = content_length(&req);
    let body = has_body(&req).then(|| (body_stream(req.into_body()), size_hint));
    let done = state
        .registry
        .upload_finish(name, id, &digest, range, body)
        .await
        .map_err(|e| with_upload_position(e, name, id))?;
    Ok(blob_created(name, &done.digest))
}
