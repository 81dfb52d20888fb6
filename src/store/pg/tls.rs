//! TLS for the team store's connections.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

/// TLS as libpq's `sslmode` asks (the URL's `?sslmode=`, default `prefer`: encrypted when
/// the server offers it), always verifying the server's certificate: against the public web
/// roots (Mozilla's), and like libpq against `PGSSLROOTCERT` or `~/.postgresql/root.crt` for a
/// private CA.
pub(super) fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let private = std::env::var_os("PGSSLROOTCERT")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
            p.exists().then_some(p)
        });
    if let Some(path) = private {
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| anyhow!("reading the CA certificates in {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow!("a certificate in {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("setting up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
