//! [`Security`]: who may talk to a cluster.
//!
//! Two independent mechanisms, both off by default (a cluster on 127.0.0.1
//! for one user needs neither):
//!
//! - **Token**: a shared secret checked in the handshake of every connection
//!   (client -> scheduler, worker -> scheduler, worker -> worker and client ->
//!   worker data fetches). The side that accepts a connection reads the
//!   peer's `Hello` and refuses it before any message is processed when the
//!   token is missing or wrong (compared in constant time); the refused peer
//!   gets [`Error::Unauthorized`](crate::Error::Unauthorized) with the reason
//!   and the refusal is logged. The connecting side also checks the token of
//!   the process it reached, so a client with a token does not talk to an
//!   impostor scheduler without one. Without TLS the token travels in clear:
//!   use TLS on networks you do not trust.
//! - **TLS** with mutual authentication (rustls, *ring* provider): every
//!   connection is encrypted, and both sides present a certificate signed by
//!   the cluster's CA; a peer without one is refused during the TLS
//!   handshake. As in Dask, certificates are checked against the CA, not
//!   against host names: the CA signs the members of one cluster.
//!
//! ```
//! use dask_distributed::Security;
//!
//! let security = Security::new().with_token("s3cret").unwrap();
//! assert!(security.token_required());
//! assert!(Security::new().with_token("").is_err());
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use crate::{Error, Result};

/// The environment variable `dask scheduler`, `dask worker` and
/// [`Security::from_env`] read the token from.
pub const TOKEN_ENV: &str = "DASK_TOKEN";

/// Who may connect: an optional shared-secret token and optional mutual TLS.
/// Cheap to clone; `Security::default()` is neither (plain TCP, anyone on
/// the network may connect).
#[derive(Clone, Default)]
pub struct Security {
    token: Option<Arc<str>>,
    tls: Option<Arc<Tls>>,
}

/// Never prints the token.
impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The rustls configurations of one process: the same certificate serves
/// when it accepts connections and when it opens them.
pub(crate) struct Tls {
    pub(crate) client: Arc<ClientConfig>,
    pub(crate) server: Arc<ServerConfig>,
}

impl Security {
    /// No token, no TLS.
    pub fn new() -> Security {
        Security::default()
    }

    /// Requires (and presents) `token` on every connection. An empty token
    /// is refused: it would look like security and be none.
    pub fn with_token(mut self, token: impl Into<String>) -> Result<Security> {
        let token = token.into();
        if token.is_empty() {
            return Err(Error::InvalidConfig {
                message: format!(
                    "the token is empty: give a non-empty secret (--token or {TOKEN_ENV}), \
                     or no token at all"
                ),
            });
        }
        self.token = Some(token.into());
        Ok(self)
    }

    /// [`Security::new`] with the token in the `DASK_TOKEN` environment
    /// variable, if it is set (an empty value is refused).
    pub fn from_env() -> Result<Security> {
        match std::env::var(TOKEN_ENV) {
            Ok(token) => Security::new().with_token(token),
            Err(std::env::VarError::NotPresent) => Ok(Security::new()),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::InvalidConfig {
                message: format!("{TOKEN_ENV} is not valid UTF-8: set it to a text secret"),
            }),
        }
    }

    /// Mutual TLS from PEM text: the cluster's CA certificate(s), this
    /// process's certificate chain (signed by that CA) and its private key.
    pub fn with_tls_pem(mut self, ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Security> {
        let bad = |what: &str, why: String| Error::InvalidConfig {
            message: format!("TLS {what}: {why}"),
        };
        let cas = CertificateDer::pem_slice_iter(ca)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad("CA certificate", format!("not PEM certificates ({e})")))?;
        if cas.is_empty() {
            return Err(bad(
                "CA certificate",
                "no `BEGIN CERTIFICATE` section found".into(),
            ));
        }
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", format!("not PEM certificates ({e})")))?;
        if chain.is_empty() {
            return Err(bad(
                "certificate",
                "no `BEGIN CERTIFICATE` section found".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
            bad(
                "private key",
                format!("no PEM private key found ({e}): give a PKCS#8, PKCS#1 or SEC1 key"),
            )
        })?;
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| bad("CA certificate", e.to_string()))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| bad("CA certificate", e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("setup", e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| bad("certificate and key", e.to_string()))?;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| bad("CA certificate", e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("setup", e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ClusterCa(server_verifier)))
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("certificate and key", e.to_string()))?;
        self.tls = Some(Arc::new(Tls {
            client: Arc::new(client),
            server: Arc::new(server),
        }));
        Ok(self)
    }

    /// [`Security::with_tls_pem`] from files (Dask's `--tls-ca-file`,
    /// `--tls-cert`, `--tls-key`).
    pub fn with_tls_files(self, ca: &Path, cert: &Path, key: &Path) -> Result<Security> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| Error::InvalidConfig {
                message: format!("cannot read the TLS {what} {}: {e}", path.display()),
            })
        };
        let (ca, cert, key) = (
            read("CA file", ca)?,
            read("certificate", cert)?,
            read("key", key)?,
        );
        self.with_tls_pem(&ca, &cert, &key)
    }

    /// Whether peers must present the token.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether connections use TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub(crate) fn tls(&self) -> Option<&Tls> {
        self.tls.as_deref()
    }

    /// Whether `presented` is this process's token (always true without
    /// one), compared in constant time.
    pub(crate) fn accepts(&self, presented: Option<&str>) -> TokenCheck {
        match (&self.token, presented) {
            (None, _) => TokenCheck::Accepted,
            (Some(_), None) => TokenCheck::Missing,
            (Some(ours), Some(theirs)) => {
                if constant_time_eq(ours.as_bytes(), theirs.as_bytes()) {
                    TokenCheck::Accepted
                } else {
                    TokenCheck::Wrong
                }
            }
        }
    }
}

/// The outcome of a token check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Accepted,
    Missing,
    Wrong,
}

/// Equality whose time depends on the lengths only, not on where the bytes
/// differ (the token's length is not secret enough to hide).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Verifies a server's chain against the cluster's CA and ignores the host
/// name, as Dask does (workers reach each other by IP address, and the CA
/// signs the members of one cluster only).
#[derive(Debug)]
struct ClusterCa(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ClusterCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let s = Security::new().with_token("abc").unwrap();
        assert_eq!(s.accepts(Some("abc")), TokenCheck::Accepted);
        assert_eq!(s.accepts(Some("abd")), TokenCheck::Wrong);
        assert_eq!(s.accepts(None), TokenCheck::Missing);
        assert_eq!(Security::new().accepts(None), TokenCheck::Accepted);
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn bad_tls_material_is_refused_with_what_was_wrong() {
        let err = Security::new()
            .with_tls_pem(b"not pem", b"", b"")
            .unwrap_err();
        assert!(err.to_string().contains("CA certificate"), "{err}");
        let err = Security::new()
            .with_tls_files(
                Path::new("/nonexistent/ca.pem"),
                Path::new("/nonexistent/c.pem"),
                Path::new("/nonexistent/k.pem"),
            )
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
