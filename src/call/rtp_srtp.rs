//! SRTP for plain RTP participants (keys exchanged in the request: mediasoup's `srtpParameters`, or SDES `a=crypto`
//! in an SDP offer, RFC 4568): the suites we take, a master key held as a secret (it prints as `***`), and the
//! GStreamer elements that use it: `srtpdec` in front of a session (packets failing authentication are dropped
//! there) and `srtpenc` behind its outgoing RTCP.

use crate::gst_util::make;
use anyhow::Result;
use base64::Engine;
use gst::prelude::*;
use secrecy::{ExposeSecret, SecretSlice};
use std::fmt;

/// The crypto suites we take, by their RFC 4568 / RFC 6188 / RFC 7714 names (mediasoup's `cryptoSuite` uses the
/// same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl SrtpSuite {
    const ALL: [Self; 6] = [
        Self::AesCm128HmacSha1_80,
        Self::AesCm128HmacSha1_32,
        Self::AesCm256HmacSha1_80,
        Self::AesCm256HmacSha1_32,
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
    ];

    /// Every suite's name, for the error that lists what we take.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|s| s.name()).collect()
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Self::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Bytes of master key and of master salt: counter mode salts are 14 bytes (RFC 3711, RFC 6188), GCM's 12
    /// (RFC 7714 §12).
    fn key_and_salt_bytes(self) -> (usize, usize) {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => (16, 14),
            Self::AesCm256HmacSha1_80 | Self::AesCm256HmacSha1_32 => (32, 14),
            Self::AeadAes128Gcm => (16, 12),
            Self::AeadAes256Gcm => (32, 12),
        }
    }

    /// The cipher of SRTP and SRTCP alike, as srtpdec/srtpenc name it.
    fn cipher(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => "aes-128-icm",
            Self::AesCm256HmacSha1_80 | Self::AesCm256HmacSha1_32 => "aes-256-icm",
            Self::AeadAes128Gcm => "aes-128-gcm",
            Self::AeadAes256Gcm => "aes-256-gcm",
        }
    }

    /// The RTP authentication tag, as srtpdec/srtpenc name it: none apart from GCM's own. SRTCP uses the 80-bit
    /// tag with counter mode (RFC 4568 §6.2.1: the `_32` suites shorten the SRTP tag only).
    fn rtp_auth(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm256HmacSha1_80 => "hmac-sha1-80",
            Self::AesCm128HmacSha1_32 | Self::AesCm256HmacSha1_32 => "hmac-sha1-32",
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => "null",
        }
    }

    fn rtcp_auth(self) -> &'static str {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => "null",
            _ => "hmac-sha1-80",
        }
    }
}

/// Why a suite or key was refused; the message never contains the key.
#[derive(Debug, PartialEq, Eq)]
pub enum SrtpKeyError {
    Suite(String),
    Key(String),
}

/// One master key and salt with its suite. Debug prints the suite only.
pub struct SrtpKey {
    pub suite: SrtpSuite,
    key_and_salt: SecretSlice<u8>,
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpKey({}, ***)", self.suite.name())
    }
}

impl SrtpKey {
    /// A suite name and the base64 of key || salt (30 bytes), as a request gives them.
    pub fn parse(suite: &str, key_base64: &str) -> Result<Self, SrtpKeyError> {
        let suite = SrtpSuite::parse(suite).ok_or_else(|| {
            // The suite name is not secret, but it is the sender's text: cap what we echo.
            let shown: String = suite.chars().take(40).collect();
            SrtpKeyError::Suite(format!("`{shown}`: we take {}", SrtpSuite::names().join(", ")))
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_base64.trim())
            .map_err(|_| SrtpKeyError::Key("is not base64".into()))?;
        let (key, salt) = suite.key_and_salt_bytes();
        if bytes.len() != key + salt {
            return Err(SrtpKeyError::Key(format!(
                "must be {} bytes ({key} of key, {salt} of salt) once decoded, for this crypto_suite",
                key + salt
            )));
        }
        Ok(Self {
            suite,
            key_and_salt: bytes.into(),
        })
    }

    /// A fresh random key (ours, for the SRTCP we send when the sender's key came in an SDP offer).
    pub fn generate(suite: SrtpSuite) -> Self {
        let (key, salt) = suite.key_and_salt_bytes();
        let bytes: Vec<u8> = (0..key + salt).map(|_| rand::random::<u8>()).collect();
        Self {
            suite,
            key_and_salt: bytes.into(),
        }
    }

    /// The key as base64, for the one place it must be written: our own key in an SDP answer's `a=crypto`.
    pub fn expose_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key_and_salt.expose_secret())
    }

    fn buffer(&self) -> gst::Buffer {
        gst::Buffer::from_slice(self.key_and_salt.expose_secret().to_vec())
    }

    /// What `srtpdec`'s `request-key` signal wants for every SSRC of the session (never logged).
    fn decoder_caps(&self) -> gst::Caps {
        gst::Caps::builder("application/x-srtp")
            .field("srtp-key", self.buffer())
            .field("srtp-cipher", self.suite.cipher())
            .field("srtp-auth", self.suite.rtp_auth())
            .field("srtcp-cipher", self.suite.cipher())
            .field("srtcp-auth", self.suite.rtcp_auth())
            .build()
    }

    /// An `srtpdec` that decrypts and authenticates with this key whatever the SSRC (RTP and RTCP alike).
    pub fn decoder(self: &std::sync::Arc<Self>) -> Result<gst::Element> {
        let dec = make("srtpdec")?;
        let key = self.clone();
        dec.connect("request-key", false, move |_| Some(key.decoder_caps().to_value()));
        Ok(dec)
    }

    /// An `srtpenc` for our outgoing RTCP, keyed with this key.
    pub fn encoder(&self) -> Result<gst::Element> {
        let enc = make("srtpenc")?;
        enc.set_property("key", self.buffer());
        enc.set_property_from_str("rtp-cipher", self.suite.cipher());
        enc.set_property_from_str("rtp-auth", self.suite.rtp_auth());
        enc.set_property_from_str("rtcp-cipher", self.suite.cipher());
        enc.set_property_from_str("rtcp-auth", self.suite.rtcp_auth());
        Ok(enc)
    }
}

/// The keys of one participant: the sender's, to decrypt what it sends, and the one our RTCP is encrypted with.
#[derive(Debug, Clone)]
pub struct SrtpKeys {
    pub receive: std::sync::Arc<SrtpKey>,
    pub send: std::sync::Arc<SrtpKey>,
}

#[cfg(test)]
mod tests;
