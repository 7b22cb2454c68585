//! Multipart uploads a previous run left unfinished (killed mid-upload, or storage gone before the abort went
//! through): storage keeps, and bills, their parts until someone aborts them. At start, before any upload of
//! this run, those under the key prefixes that are this server's own are aborted (the queue uploads their files
//! again from the start). `object_store` has no call to list multipart uploads: the listing is a plain S3
//! `ListMultipartUploads` request signed by `object_store`'s own SigV4 signer; the aborts are its calls.

use super::Store;
use object_store::aws::AwsAuthorizer;
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::multipart::MultipartStore;
use std::time::Duration;

/// Uploads listed per request (S3's most); pages beyond `MAX_PAGES` wait for the next start.
const PAGE: u32 = 1000;
const MAX_PAGES: usize = 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub key: String,
    pub upload_id: String,
}

/// Aborts the unfinished multipart uploads whose key starts with one of `ours`; returns how many.
pub async fn abort_unfinished(store: &Store, ours: &[String]) -> Result<usize, String> {
    if ours.is_empty() {
        return Ok(0);
    }
    let mut aborted = 0;
    for upload in list(store).await? {
        if !ours.iter().any(|prefix| upload.key.starts_with(prefix.as_str())) {
            continue;
        }
        let path = object_store::path::Path::from(upload.key.as_str());
        match store.client().abort_multipart(&path, &upload.upload_id).await {
            Ok(()) => {
                tracing::info!(key = %upload.key, "aborted a multipart upload left unfinished");
                aborted += 1;
            }
            Err(e) => tracing::warn!(key = %upload.key, "cannot abort a multipart upload: {}", store.describe(&e)),
        }
    }
    Ok(aborted)
}

/// Every unfinished multipart upload under the store's prefix (up to `MAX_PAGES` pages).
async fn list(store: &Store) -> Result<Vec<Unfinished>, String> {
    let credential = store
        .client()
        .credentials()
        .get_credential()
        .await
        .map_err(|e| store.describe(&e))?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let prefix = match store.url().prefix.as_str() {
        "" => String::new(),
        prefix => format!("{prefix}/"),
    };
    let mut found = Vec::new();
    let mut markers: Option<(String, String)> = None;
    for _ in 0..MAX_PAGES {
        let mut url = url::Url::parse(store.bucket_url()).map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("uploads", "")
            .append_pair("max-uploads", &PAGE.to_string())
            .append_pair("prefix", &prefix);
        if let Some((key, id)) = &markers {
            url.query_pairs_mut()
                .append_pair("key-marker", key)
                .append_pair("upload-id-marker", id);
        }
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.uri_mut() = url.as_str().parse().map_err(|e| format!("{e}"))?;
        AwsAuthorizer::new(&credential, "s3", store.region()).authorize(&mut request, None);
        let response = http
            .get(url)
            .headers(request.headers().clone())
            .send()
            .await
            .map_err(|e| format!("listing multipart uploads: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("listing multipart uploads: {status}: {}", error_code(&body)));
        }
        let page = parse_listing(&body);
        found.extend(page.uploads);
        match page.next {
            Some(next) => markers = Some(next),
            None => break,
        }
    }
    Ok(found)
}

struct Page {
    uploads: Vec<Unfinished>,
    /// The markers of the next page, if the listing was cut.
    next: Option<(String, String)>,
}

/// Reads a `ListMultipartUploadsResult` (the fields used here are plain text elements).
fn parse_listing(xml: &str) -> Page {
    let uploads = xml
        .split("<Upload>")
        .skip(1)
        .filter_map(|upload| {
            Some(Unfinished {
                key: element(upload, "Key")?,
                upload_id: element(upload, "UploadId")?,
            })
        })
        .collect();
    let truncated = element(xml, "IsTruncated").is_some_and(|t| t == "true");
    let next = truncated
        .then(|| Some((element(xml, "NextKeyMarker")?, element(xml, "NextUploadIdMarker")?)))
        .flatten();
    Page { uploads, next }
}

/// The text of the first `<name>` element in `xml`, unescaped.
fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = &xml[start..end];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// An S3 error body's `Code` alone: its other elements may echo the access key id or the signed request
/// (security token included), never to be logged.
fn error_code(body: &str) -> String {
    element(body, "Code")
        .filter(|c| c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "no S3 error code".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_gives_each_uploads_key_and_id_and_the_next_page() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>shows</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>p/bc_2/recordings/b.mp4</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>p/bc_1/recordings/a&amp;b.mp4</Key><UploadId>id-1</UploadId><Initiated>2026-11-30T10:00:00.000Z</Initiated></Upload>
  <Upload><Key>p/bc_2/recordings/b.mp4</Key><UploadId>id-2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page = parse_listing(xml);
        assert_eq!(
            page.uploads,
            [
                Unfinished {
                    key: "p/bc_1/recordings/a&b.mp4".into(),
                    upload_id: "id-1".into()
                },
                Unfinished {
                    key: "p/bc_2/recordings/b.mp4".into(),
                    upload_id: "id-2".into()
                },
            ]
        );
        assert_eq!(page.next, Some(("p/bc_2/recordings/b.mp4".into(), "id-2".into())));
        let last =
            parse_listing("<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>");
        assert!(last.uploads.is_empty() && last.next.is_none());
    }

    #[test]
    fn an_error_body_gives_its_code_and_nothing_it_echoes() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>\
                    <AWSAccessKeyId>AKIAEXAMPLEKEY</AWSAccessKeyId><CanonicalRequest>GET\nx-amz-security-token:\
                    FwoGZXIvYXdzEXAMPLE</CanonicalRequest></Error>";
        assert_eq!(error_code(body), "SignatureDoesNotMatch");
        assert_eq!(error_code("<html>bad gateway</html>"), "no S3 error code");
        assert_eq!(
            error_code("<Error><Code>AKIA secret</Code></Error>"),
            "no S3 error code"
        );
    }
}
