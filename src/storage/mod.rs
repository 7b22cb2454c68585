//! Object storage (S3 and S3-compatible servers: MinIO, R2, GCS's S3 API). Files handed to the `Uploader` are
//! written to an on-disk queue first, then uploaded in order per owner, retried with backoff while storage is
//! down or slow, and reported as `UploadEvent`s. Knows nothing of broadcasts: an owner is an opaque name and
//! a key is given whole.

pub mod backoff;
pub mod headers;
pub mod leftovers;
pub mod location;
pub mod queue;
pub mod store;
pub mod uploader;

pub use headers::ObjectHeaders;
pub use location::StorageUrl;
pub use store::{Store, StoreSettings};
pub use uploader::{OwnerStats, Source, UploadEvent, Uploader};
