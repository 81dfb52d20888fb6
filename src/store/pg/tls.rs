//! TLS for the team store's connections: libpq's `sslmode` and `sslrootcert`, with the
//! server's certificate always verified when TLS is used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// libpq's `sslmode` values, in libpq's order.
pub(super) const MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// What a connection asks of TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tls {
    /// libpq's `sslmode`, one of [`MODES`].
    pub mode: &'static str,
    /// Where the trusted CAs come from.
    pub roots: Roots,
}

/// The CAs a server's certificate must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Roots {
    /// The public web roots (Mozilla's): no root certificate given, or `sslrootcert=system`.
    Web,
    /// Only the CAs in this PEM file (`sslrootcert`, `PGSSLROOTCERT`, `~/.postgresql/root.crt`).
    File(PathBuf),
}

impl Tls {
    /// `sslmode` and `sslrootcert` as the URL gives them, else as `PGSSLMODE` and
    /// `PGSSLROOTCERT` do, else `prefer` and `~/.postgresql/root.crt` when it exists.
    pub(super) fn decide(
        url_mode: Option<&str>,
        url_root: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Tls> {
        let (given, from) = match url_mode {
            Some(m) => (Some(m.to_string()), "sslmode"),
            None => (env("PGSSLMODE"), "PGSSLMODE"),
        };
        let mode = match given {
            None => "prefer",
            Some(m) => MODES.iter().copied().find(|v| *v == m).ok_or_else(|| {
                anyhow!(
                    "{from} \"{}\" is not one of {}",
                    crate::model::text::escape(&m),
                    MODES.join(", ")
                )
            })?,
        };
        let root = url_root
            .map(str::to_string)
            .or_else(|| env("PGSSLROOTCERT"));
        let roots = match root.as_deref() {
            Some("system") => Roots::Web,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => match env("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")) {
                Some(p) if p.exists() => Roots::File(p),
                _ => Roots::Web,
            },
        };
        if mode == "verify-ca" && roots == Roots::Web {
            // Any certificate a public CA issued, for any name, would pass.
            bail!(
                "sslmode verify-ca needs the CA that signed the server's certificate: \
                 sslrootcert=PATH in the URL, PGSSLROOTCERT or ~/.postgresql/root.crt \
                 (or verify-full, to check the server's name against the public roots)"
            );
        }
        Ok(Tls { mode, roots })
    }

    /// rust-postgres' own mode: whether to ask for TLS and whether to insist on it.
    pub(super) fn ssl_mode(&self) -> postgres::config::SslMode {
        use postgres::config::SslMode;
        match self.mode {
            "disable" => SslMode::Disable,
            // `allow` (libpq: plaintext first, TLS if the server insists) asks for TLS first,
            // as `prefer` does: the same server is reached, encrypted when it can be.
            "allow" | "prefer" => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }

    /// The TLS connector: the server's certificate must chain to the roots, and (except for
    /// `verify-ca`) name the host connected to, as libpq's `verify-full` checks.
    pub(super) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.roots {
            Roots::Web => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Roots::File(path) => read_roots(path, &mut roots)?,
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?;
        let config = if self.mode == "verify-ca" {
            let full = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("setting up TLS")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(full)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

fn read_roots(path: &Path, roots: &mut rustls::RootCertStore) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow!("reading the CA certificates in {}: {e}", path.display()))?;
    let mut any = false;
    for cert in certs {
        let cert = cert.map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| anyhow!("a certificate in {}: {e}", path.display()))?;
        any = true;
    }
    if !any {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(())
}

/// `verify-ca`: the whole of webpki's verification (chain, validity, usage, signatures), of
/// which only a certificate naming another host is forgiven. webpki checks the name last,
/// once the chain is verified, so that error means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_url_wins_over_the_environment_and_prefer_is_the_default() {
        let none = env(&[("HOME", "/nonexistent")]);
        let t = Tls::decide(None, None, &none).expect("default");
        assert_eq!((t.mode, t.roots), ("prefer", Roots::Web));
        let pg = env(&[
            ("PGSSLMODE", "require"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
            ("HOME", "/nonexistent"),
        ]);
        let t = Tls::decide(None, None, &pg).expect("from the environment");
        assert_eq!(t.mode, "require");
        assert_eq!(t.roots, Roots::File("/etc/ca.pem".into()));
        let t = Tls::decide(Some("disable"), Some("system"), &pg).expect("from the URL");
        assert_eq!((t.mode, t.roots), ("disable", Roots::Web));
        for m in MODES {
            let t = Tls::decide(Some(m), Some("/ca.pem"), &none).expect("every libpq mode");
            assert_eq!(t.mode, *m);
        }
    }

    #[test]
    fn modes_map_onto_rust_postgres_ones() {
        use postgres::config::SslMode;
        let none = env(&[("HOME", "/nonexistent")]);
        let mode = |m| {
            Tls::decide(Some(m), Some("/ca.pem"), &none)
                .expect("valid")
                .ssl_mode()
        };
        assert_eq!(mode("disable"), SslMode::Disable);
        assert_eq!(mode("allow"), SslMode::Prefer);
        assert_eq!(mode("prefer"), SslMode::Prefer);
        assert_eq!(mode("require"), SslMode::Require);
        assert_eq!(mode("verify-ca"), SslMode::Require);
        assert_eq!(mode("verify-full"), SslMode::Require);
    }

    #[test]
    fn a_bad_mode_is_named_with_the_valid_ones_and_verify_ca_needs_a_ca() {
        let none = env(&[("HOME", "/nonexistent")]);
        let e = Tls::decide(Some("verify_full"), None, &none)
            .expect_err("not a mode")
            .to_string();
        assert_eq!(
            e,
            "sslmode \"verify_full\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
        );
        let bad = env(&[("PGSSLMODE", "on\x1b[2J")]);
        let e = Tls::decide(None, None, &bad)
            .expect_err("not a mode")
            .to_string();
        assert!(e.starts_with("PGSSLMODE \"on\\x1b[2J\" is not"), "{e}");
        let e = Tls::decide(Some("verify-ca"), None, &none)
            .expect_err("no CA")
            .to_string();
        assert!(e.contains("sslrootcert=PATH"), "{e}");
        assert!(Tls::decide(Some("verify-ca"), Some("system"), &none).is_err());
    }
}
