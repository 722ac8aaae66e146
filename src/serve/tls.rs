//! TLS for both receivers (rustls with ring): the server's certificate chain
//! and key and, with a client CA, mutual TLS (a client must present a
//! certificate that CA signed). Read once at start; a file that does not
//! parse is an error naming it and the flag.

use anyhow::{anyhow, Context, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

fn certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, flag)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{flag} {}: not a PEM certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "{flag} {}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    /// The OTLP/HTTP receiver's rustls configuration (HTTP/1.1).
    pub fn rustls(&self) -> Result<Arc<rustls::ServerConfig>> {
        let chain = certs(&self.cert, "--tls-cert")?;
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key, "--tls-key")?).map_err(|e| {
            anyhow!(
                "--tls-key {}: not a PEM private key: {e}",
                self.key.display()
            )
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs(ca, "--tls-client-ca")? {
                    roots
                        .add(c)
                        .map_err(|e| anyhow!("--tls-client-ca {}: {e}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| anyhow!("--tls-client-ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            anyhow!(
                "--tls-cert {} and --tls-key {}: {e}",
                self.cert.display(),
                self.key.display()
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The OTLP/gRPC receiver's TLS configuration (tonic's, over rustls).
    pub fn tonic(&self) -> Result<tonic::transport::ServerTlsConfig> {
        // Parsed here too, so that a bad file is named before tonic sees it.
        self.rustls()?;
        let identity = tonic::transport::Identity::from_pem(
            read(&self.cert, "--tls-cert")?,
            read(&self.key, "--tls-key")?,
        );
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(read(
                ca,
                "--tls-client-ca",
            )?));
        }
        Ok(config)
    }
}
