//! TLS for the hub's one port: user-supplied PEM files, or a self-signed CA plus server
//! certificate generated into the data directory on first start and reused afterwards.
//! Delegates and clients trust `tls/ca.pem` (or pin its fingerprint, which is logged).
use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::{path::Path, sync::Arc};

pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the trust anchor (the generated CA, or the first certificate supplied).
    pub fingerprint: String,
    /// Where the CA clients should trust lives, when generated.
    pub ca_path: Option<std::path::PathBuf>,
}

pub fn load_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    extra_sans: &[String],
) -> anyhow::Result<Tls> {
    let (chain, key, anchor, ca_path) = match (cert, key) {
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c)
                .with_context(|| format!("failed to read --tls-cert {}", c.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("--tls-cert {} is not valid PEM", c.display()))?;
            anyhow::ensure!(
                !chain.is_empty(),
                "--tls-cert {} holds no certificate",
                c.display()
            );
            let key = PrivateKeyDer::from_pem_file(k)
                .with_context(|| format!("--tls-key {} is not a PEM private key", k.display()))?;
            let anchor = chain[0].to_vec();
            (chain, key, anchor, None)
        }
        _ => generated(data_dir, extra_sans)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        fingerprint: fingerprint(&anchor),
        ca_path,
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

type Material = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Vec<u8>,
    Option<std::path::PathBuf>,
);

fn generated(data_dir: &Path, extra_sans: &[String]) -> anyhow::Result<Material> {
    let dir = data_dir.join("tls");
    let (ca_pem, cert_pem, key_pem) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    if !(ca_pem.exists() && cert_pem.exists() && key_pem.exists()) {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "Faultline hub CA");
        let ca_cert = ca.self_signed(&ca_key)?;

        let mut sans = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if let Ok(h) = nix::unistd::gethostname() {
            if let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
                sans.push(h.to_string());
            }
        }
        sans.extend(extra_sans.iter().cloned());
        sans.dedup();
        let leaf_key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(sans)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "faultline hub");
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

        write_private(&key_pem, leaf_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_pem, leaf_cert.pem())?;
        std::fs::write(&ca_pem, ca_cert.pem())?;
        tracing::info!(dir = %dir.display(), "generated a self-signed TLS CA and server certificate");
    }
    let leaf = CertificateDer::from_pem_file(&cert_pem)
        .with_context(|| format!("failed to read {}", cert_pem.display()))?;
    let ca = CertificateDer::from_pem_file(&ca_pem)
        .with_context(|| format!("failed to read {}", ca_pem.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_pem)
        .with_context(|| format!("failed to read {}", key_pem.display()))?;
    let anchor = ca.to_vec();
    Ok((vec![leaf, ca], key, anchor, Some(ca_pem)))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
