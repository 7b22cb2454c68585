//! The S3 client (`object_store`'s `AmazonS3`: SigV4 signing, multipart uploads, over reqwest and rustls):
//! one file to one key, and errors a person can act on, with no credential in them.

use super::{ObjectHeaders, StorageUrl};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{
    ClientOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Files up to this size go in one PUT; bigger ones in parts of `PART_SIZE` (S3's smallest part is 5 MiB).
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one file in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// A request that takes longer is given up and retried by the queue: storage that stopped answering must not
/// hold a file's upload for ever. Generous for an 8 MiB part on a slow link.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The region signed for when none is configured (S3-compatible servers mostly ignore it).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where and as whom to store, from the server's settings.
#[derive(Clone)]
pub struct StoreSettings {
    pub url: StorageUrl,
    /// An S3-compatible server (`http://127.0.0.1:9000`); None: AWS S3 in `region`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
    /// With temporary credentials (`AWS_SESSION_TOKEN`): goes with the two above.
    pub session_token: Option<SecretString>,
}

pub struct Store {
    s3: Arc<AmazonS3>,
    url: StorageUrl,
    endpoint: String,
    /// The bucket's own URL (path style, as the client addresses it), for requests the client has no call for.
    bucket_url: String,
    region: String,
    /// Scrubbed from every error text.
    secrets: Vec<SecretString>,
}

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The local file is gone: retrying cannot help.
    #[error("local file {0} is missing")]
    Missing(String),
    /// Storage refused or could not be reached; worth another try.
    #[error("{0}")]
    Storage(String),
}

impl Store {
    pub fn new(settings: &StoreSettings) -> Result<Self, String> {
        let (builder, secrets) = client_config(settings)?;
        let s3 = builder.build().map_err(|e| scrub(&secrets, &e.to_string()))?;
        Ok(Self {
            s3: Arc::new(s3),
            bucket_url: bucket_url(settings),
            region: settings.region.clone().unwrap_or_else(|| DEFAULT_REGION.to_string()),
            url: settings.url.clone(),
            endpoint: settings.endpoint.clone().unwrap_or_else(|| "AWS S3".to_string()),
            secrets,
        })
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    pub(super) fn client(&self) -> &Arc<AmazonS3> {
        &self.s3
    }

    pub(super) fn bucket_url(&self) -> &str {
        &self.bucket_url
    }

    pub(super) fn region(&self) -> &str {
        &self.region
    }

    /// Stores the file at `path` under `key` with `headers`; returns its size once storage confirmed it.
    pub async fn put_file(&self, key: &str, path: &Path, headers: &ObjectHeaders) -> Result<u64, PutError> {
        let missing = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => PutError::Missing(path.display().to_string()),
            _ => PutError::Storage(format!("reading {}: {e}", path.display())),
        };
        let mut file = tokio::fs::File::open(path).await.map_err(missing)?;
        let size = file.metadata().await.map_err(missing)?.len();
        let location = object_store::path::Path::from(key);
        let stored = if size <= MULTIPART_THRESHOLD {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await.map_err(missing)?;
            let options = PutOptions {
                attributes: headers.attributes(),
                ..PutOptions::default()
            };
            self.s3
                .put_opts(&location, PutPayload::from(bytes), options)
                .await
                .map(|_| ())
                .map_err(|e| self.describe(&e))
        } else {
            self.put_parts(&location, &mut file, headers).await
        };
        stored.map(|()| size).map_err(PutError::Storage)
    }

    async fn put_parts(
        &self,
        location: &object_store::path::Path,
        file: &mut tokio::fs::File,
        headers: &ObjectHeaders,
    ) -> Result<(), String> {
        let options = PutMultipartOptions {
            attributes: headers.attributes(),
            ..PutMultipartOptions::default()
        };
        let upload = self
            .s3
            .put_multipart_opts(location, options)
            .await
            .map_err(|e| self.describe(&e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut chunk = vec![0u8; 1024 * 1024];
        loop {
            let read = match file.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(format!("reading the local file: {e}"));
                }
            };
            if read == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let message = self.describe(&e);
                let _ = writer.abort().await;
                return Err(message);
            }
            writer.write(&chunk[..read]);
        }
        writer.finish().await.map(|_| ()).map_err(|e| self.describe(&e))
    }

    /// What went wrong, said so that the one who configured storage knows what to fix; never a credential.
    pub(super) fn describe(&self, error: &object_store::Error) -> String {
        let text = scrub(&self.secrets, &format!("{error}"));
        let bucket = &self.url.bucket;
        let said = |code: &str| text.contains(&format!("<Code>{code}</Code>")) || text.contains(code);
        let message = if said("NoSuchBucket") {
            format!("bucket `{bucket}` does not exist at {} (NoSuchBucket)", self.endpoint)
        } else if said("InvalidAccessKeyId") {
            "storage does not know the access key id (InvalidAccessKeyId): check the credentials".to_string()
        } else if said("SignatureDoesNotMatch") {
            "storage refused the signature (SignatureDoesNotMatch): check the secret access key".to_string()
        } else if said("AccessDenied") || text.contains("403 Forbidden") {
            format!("storage refused access to bucket `{bucket}` (AccessDenied): check the credentials and policy")
        } else if text.contains("Connection refused") || text.contains("error sending request") {
            format!("cannot reach storage at {}: {}", self.endpoint, shorten(&text))
        } else {
            shorten(&text)
        };
        message
    }
}

/// Where the client sends a bucket's requests: `{endpoint}/{bucket}`, or AWS S3's regional endpoint.
fn bucket_url(settings: &StoreSettings) -> String {
    let region = settings.region.as_deref().unwrap_or(DEFAULT_REGION);
    let endpoint = match &settings.endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    format!("{endpoint}/{}", settings.url.bucket)
}

/// The S3 client's configuration, and the credentials to scrub from its errors.
fn client_config(settings: &StoreSettings) -> Result<(AmazonS3Builder, Vec<SecretString>), String> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&settings.url.bucket)
        .with_region(settings.region.as_deref().unwrap_or(DEFAULT_REGION))
        .with_client_options(
            ClientOptions::new()
                .with_timeout(REQUEST_TIMEOUT)
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_allow_http(settings.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))),
        )
        // The queue retries with its own backoff and reports each failure: no hidden retries here.
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &settings.endpoint {
        let parsed = url::Url::parse(endpoint).map_err(|e| format!("storage_endpoint: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("storage_endpoint: must be an http:// or https:// URL".into());
        }
        builder = builder.with_endpoint(endpoint);
    }
    let mut secrets = Vec::new();
    if let Some(id) = &settings.access_key_id {
        builder = builder.with_access_key_id(id.expose_secret());
        secrets.push(id.clone());
    }
    if let Some(key) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(key.expose_secret());
        secrets.push(key.clone());
    }
    if let Some(token) = &settings.session_token {
        // Temporary credentials (STS): signed into every request as `x-amz-security-token`.
        builder = builder.with_token(token.expose_secret());
        secrets.push(token.clone());
    }
    Ok((builder, secrets))
}

fn scrub(secrets: &[SecretString], text: &str) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if !secret.expose_secret().is_empty() {
            out = out.replace(secret.expose_secret(), "***");
        }
    }
    out
}

/// Error texts carry whole XML bodies: the first line is enough for a status.
fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_error_text() {
        let secrets = [SecretString::from("AKIDSECRET"), SecretString::from("s3cr3t/key")];
        let text = scrub(&secrets, "Credential=AKIDSECRET/20261130 key s3cr3t/key refused");
        assert_eq!(text, "Credential=***/20261130 key *** refused");
    }

    #[test]
    fn a_bad_endpoint_is_refused_by_name() {
        let settings = StoreSettings {
            url: StorageUrl::parse("s3://shows").unwrap(),
            endpoint: Some("ftp://example.com".into()),
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        };
        let error = Store::new(&settings).err().expect("refused");
        assert!(error.starts_with("storage_endpoint:"), "{error}");
    }

    #[test]
    fn a_session_token_reaches_the_client_and_is_scrubbed_like_the_keys() {
        use object_store::aws::AmazonS3ConfigKey;
        let settings = StoreSettings {
            url: StorageUrl::parse("s3://shows").unwrap(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key_id: Some("ASIATEMPORARY".into()),
            secret_access_key: Some("temporary-secret".into()),
            session_token: Some("FwoGZXIvYXdzEXAMPLE//token".into()),
        };
        let (builder, secrets) = client_config(&settings).unwrap();
        assert_eq!(
            builder.get_config_value(&AmazonS3ConfigKey::Token).as_deref(),
            Some("FwoGZXIvYXdzEXAMPLE//token")
        );
        assert_eq!(
            builder.get_config_value(&AmazonS3ConfigKey::AccessKeyId).as_deref(),
            Some("ASIATEMPORARY")
        );
        let text = scrub(&secrets, "x-amz-security-token: FwoGZXIvYXdzEXAMPLE//token refused");
        assert_eq!(text, "x-amz-security-token: *** refused");
        let store = Store::new(&settings).unwrap();
        assert_eq!(store.secrets.len(), 3, "every credential is scrubbed from errors");

        let without = StoreSettings {
            session_token: None,
            ..settings
        };
        let (builder, _) = client_config(&without).unwrap();
        assert_eq!(builder.get_config_value(&AmazonS3ConfigKey::Token), None);
    }
}
