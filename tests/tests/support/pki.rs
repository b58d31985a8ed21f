//! Test certificates (rcgen): a CA and the certificates it signs, as PEM, in
//! memory or written as files.
use std::{fs, path::Path};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

pub use rcgen::ExtendedKeyUsagePurpose as Usage;

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed test CA.
pub struct TestCa(CertifiedIssuer<'static, KeyPair>);

impl TestCa {
    pub fn new() -> Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.distinguished_name
            .push(DnType::CommonName, "bpf-exporter test CA");
        Ok(Self(CertifiedIssuer::self_signed(
            ca,
            KeyPair::generate()?,
        )?))
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate named `name` (its common name) for `san`, for `usage`.
    pub fn issue(&self, name: &str, san: &str, usage: Usage) -> Result<Issued> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![san.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.0)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// [`TestCa::issue`] written to `name.pem` and `name-key.pem` in `dir`.
    pub fn write(&self, dir: &Path, name: &str, san: &str, usage: Usage) -> Result<()> {
        let issued = self.issue(name, san, usage)?;
        fs::write(dir.join(format!("{name}.pem")), issued.cert_pem)?;
        fs::write(dir.join(format!("{name}-key.pem")), issued.key_pem)?;
        Ok(())
    }
}

/// `ca.crt`, and `server.pem` / `server-key.pem` for `server_name`, in `dir`.
pub fn server_pki(dir: &Path, server_name: &str) -> Result<()> {
    let ca = TestCa::new()?;
    fs::write(dir.join("ca.crt"), ca.pem())?;
    ca.write(dir, "server", server_name, Usage::ServerAuth)
}
