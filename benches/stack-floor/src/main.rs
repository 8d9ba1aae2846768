//! The smallest program on pimetrics' decided stack: reads a RON config, builds a reqwest
//! client (rustls) and pushes once when a URL is given, and answers HTTP/1 with hyper on a
//! tokio current-thread runtime, through rustls when a certificate is given. It exports one
//! constant line: whatever it costs in binary size and memory, every pimetrics build costs
//! before its first collector.
//!
//!     stack-floor CONFIG.ron
//!     (listen: "127.0.0.1:9999", push_url: None, tls: None)
//!     (listen: "127.0.0.1:9999", push_url: Some("http://..."), tls: Some(("cert.der", "key.der")))

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;

#[derive(serde::Deserialize)]
struct Config {
    listen: String,
    push_url: Option<String>,
    /// DER certificate and PKCS#8 key files.
    tls: Option<(String, String)>,
}

fn main() -> Result<(), String> {
    let path = std::env::args().nth(1).ok_or("usage: stack-floor CONFIG.ron")?;
    let text = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
    let config: Config = ron::from_str(&text).map_err(|err| format!("{path}: {err}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .map_err(|err| err.to_string())?;
    if let Some(url) = &config.push_url {
        let _ = client.put(url).body("up 1\n").send().await;
    }
    let acceptor = match &config.tls {
        None => None,
        Some((cert, key)) => {
            let cert = std::fs::read(cert).map_err(|err| format!("{cert}: {err}"))?;
            let key = std::fs::read(key).map_err(|err| format!("{key}: {err}"))?;
            let key = rustls::pki_types::PrivateKeyDer::try_from(key)?;
            let tls = rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert.into()], key)
                .map_err(|err| err.to_string())?;
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
        }
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|err| format!("{}: {err}", config.listen))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => answer(stream).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        answer(stream).await
                    }
                }
            }
        });
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: S) {
    let service = hyper::service::service_fn(|_request| async {
        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"up 1\n"))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}
