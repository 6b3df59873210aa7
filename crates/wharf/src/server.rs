//! Serving: the accept loop for plain HTTP and HTTPS, the ready line, graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Config;

/// hyper's largest read from a connection (its default is about 400 KiB).
const HTTP1_READ_BUFFER: usize = 128 * 1024;

/// The answer a plain-HTTP port gives to a TLS ClientHello. It must start with `HTTP/` so that
/// Go clients report "server gave HTTP response to HTTPS client" and fall back to HTTP.
const TLS_ON_PLAIN_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 48\r\n\r\nthis port speaks plain HTTP, not HTTPS (TLS)  \r\n";

fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .with_context(|| format!("tls_cert {}: cannot open", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("tls_cert {}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "tls_cert {}: no certificate found in the file",
            cert.display()
        );
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .with_context(|| format!("tls_key {}: cannot open", key.display()))?,
    ))
    .with_context(|| format!("tls_key {}: not a PEM private key", key.display()))?
    .with_context(|| {
        format!(
            "tls_key {}: no private key found in the file",
            key.display()
        )
    })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("tls_cert and tls_key do not form a usable pair")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves `router` until `shutdown` fires, then drains open connections (at most 30 s).
pub async fn serve(
    config: &Config,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    on_ready: impl FnOnce(SocketAddr, &'static str),
) -> anyhow::Result<()> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(load_tls(c, k)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "listen {}: cannot bind; is another server using it?",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    on_ready(addr, if tls.is_some() { "https" } else { "http" });

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client must finish sending its request headers within this time (slow-loris bound).
    // Reads of at most 128 KiB: each becomes one body chunk, and an upload holds a few of
    // them in flight (see wharf-storage), so this bounds an upload's memory to about 1 MiB.
    // Request headers must fit in it too.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(HTTP1_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(crate::http::ClientAddr(peer)),
            router.clone(),
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(s), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                },
                None => {
                    if is_tls_client_hello(&stream).await {
                        answer_tls_on_plain(stream).await;
                        return;
                    }
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open requests to finish");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("open connections did not finish within 30 s; closing them");
        }
    }
    Ok(())
}

/// A TLS handshake record starts with 0x16 0x03; no HTTP method does.
async fn is_tls_client_hello(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 2];
    match tokio::time::timeout(Duration::from_secs(10), stream.peek(&mut buf)).await {
        Ok(Ok(2)) => buf == [0x16, 0x03],
        _ => false,
    }
}

async fn answer_tls_on_plain(mut stream: TcpStream) {
    let _ = stream.write_all(TLS_ON_PLAIN_PORT).await;
    let _ = stream.shutdown().await;
}
