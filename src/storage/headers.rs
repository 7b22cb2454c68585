//! The HTTP headers an object is stored with (`Content-Type`, `Cache-Control`): what a CDN in front of the
//! bucket and the players behind it go by. The uploader's caller decides them (it knows what a file is); they
//! travel with the job in the queue.

use object_store::{Attribute, Attributes};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    /// None: storage's default (`binary/octet-stream` on S3).
    pub content_type: Option<String>,
    /// None: none stored (the CDN's own rules apply).
    pub cache_control: Option<String>,
}

impl ObjectHeaders {
    pub fn new(content_type: &str, cache_control: &str) -> Self {
        Self {
            content_type: Some(content_type.to_string()),
            cache_control: Some(cache_control.to_string()),
        }
    }

    /// As `object_store` sends them with a PUT (single or multipart).
    pub fn attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(value) = &self.content_type {
            attributes.insert(Attribute::ContentType, value.clone().into());
        }
        if let Some(value) = &self.cache_control {
            attributes.insert(Attribute::CacheControl, value.clone().into());
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_put_attributes_and_absent_ones_are_left_out() {
        let headers = ObjectHeaders::new("video/mp2t", "max-age=31536000, immutable");
        let attributes = headers.attributes();
        assert_eq!(attributes.len(), 2);
        assert_eq!(
            attributes.get(&Attribute::ContentType).map(|v| v.as_ref()),
            Some("video/mp2t")
        );
        assert_eq!(
            attributes.get(&Attribute::CacheControl).map(|v| v.as_ref()),
            Some("max-age=31536000, immutable")
        );
        assert!(ObjectHeaders::default().attributes().is_empty());
    }
}
