//! `s3://bucket/prefix`: the bucket objects go to and the prefix every key starts with.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl StorageUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw
            .strip_prefix("s3://")
            .ok_or_else(|| "must be s3://bucket or s3://bucket/prefix".to_string())?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules (the S3-compatible servers accept at least these).
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(format!(
                "bucket `{bucket}` is not a valid name (3-63 of a-z, 0-9, '-', '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
            return Err("the prefix may not contain empty, `.` or `..` segments".into());
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The key of `parts` under the prefix, joined by `/`: `prefix/a/b` (`a/b` with no prefix).
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
        }
        key
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::StorageUrl;

    #[test]
    fn keys_go_under_the_prefix() {
        let url = StorageUrl::parse("s3://shows/prod/eu/").unwrap();
        assert_eq!((url.bucket.as_str(), url.prefix.as_str()), ("shows", "prod/eu"));
        assert_eq!(
            url.key(&["bc_1", "recordings", "out_0-20261130T041502.123Z.mp4"]),
            "prod/eu/bc_1/recordings/out_0-20261130T041502.123Z.mp4"
        );
        let root = StorageUrl::parse("s3://shows").unwrap();
        assert_eq!(root.key(&["bc_1", "hls", "index.m3u8"]), "bc_1/hls/index.m3u8");
        assert_eq!(StorageUrl::parse("s3://shows/").unwrap().prefix, "");
    }

    #[test]
    fn rejects_other_schemes_bad_buckets_and_odd_prefixes() {
        for bad in [
            "http://shows/x",
            "shows/x",
            "s3://",
            "s3://ab",
            "s3://Shows",
            "s3://-shows",
            "s3://sh_ows",
            "s3://shows/a/../b",
            "s3://shows/a//b",
        ] {
            assert!(StorageUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
