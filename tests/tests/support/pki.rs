//! A test CA and a server certificate signed by it (rcgen), as PEM files.
use std::{fs, path::Path};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// `ca.crt`, and `server.pem` / `server-key.pem` for `server_name`, in `dir`.
pub fn server_pki(dir: &Path, server_name: &str) -> Result<()> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "bpf-exporter deploy test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    fs::write(dir.join("ca.crt"), ca.pem())?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![server_name.to_owned()])?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca)?;
    fs::write(dir.join("server.pem"), cert.pem())?;
    fs::write(dir.join("server-key.pem"), key.serialize_pem())?;
    Ok(())
}
