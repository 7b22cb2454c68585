//! RTMPS trust: the system's CAs, plus the operator's own (`rtmp_ca_file`) when configured. rtmp2sink verifies
//! servers against GIO's default TLS database, which is process-wide, so the extra CA is trusted by every RTMPS
//! output of this process.

use anyhow::{Context, Result};
use gio::prelude::*;
use std::path::Path;

const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Makes `extra` (PEM, one or more certificates) trusted next to the system's CAs; the combined bundle is
/// written to `dir`.
pub fn trust_extra_ca(extra: &Path, dir: &Path) -> Result<()> {
    let extra_pem = std::fs::read_to_string(extra).with_context(|| format!("rtmp_ca_file {}", extra.display()))?;
    if !extra_pem.contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!("rtmp_ca_file {}: no PEM certificate in it", extra.display());
    }
    // A machine without the system bundle trusts the extra CA alone.
    let system = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bundle = dir.join("ca-bundle.pem");
    std::fs::write(&bundle, format!("{system}\n{extra_pem}\n"))
        .with_context(|| format!("writing {}", bundle.display()))?;
    let database = gio::TlsFileDatabase::new(&bundle)
        .with_context(|| format!("rtmp_ca_file {}: not a usable CA file", extra.display()))?;
    gio::TlsBackend::default().set_default_database(Some(&database));
    tracing::info!(file = %extra.display(), "RTMPS outputs also trust this CA");
    Ok(())
}
