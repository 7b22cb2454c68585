//! Upload throughput of `storage::Store` to an S3-compatible server: one file of SIZE_MB random bytes, stored
//! three times (one PUT up to 16 MiB, multipart above), the best time printed. Not a test: a figure for the notes.
//!
//!     moto_server -H 127.0.0.1 -p 5123 &   curl -X PUT http://127.0.0.1:5123/bench
//!     cargo bench --bench upload_throughput -- http://127.0.0.1:5123 bench 256

use callcast::storage::{StorageUrl, Store, StoreSettings};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, bucket, size_mb] = args.as_slice() else {
        eprintln!("usage: upload_throughput ENDPOINT BUCKET SIZE_MB");
        std::process::exit(2);
    };
    let size_mb: usize = size_mb.parse().expect("SIZE_MB is a number");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("payload.bin");
    let mut bytes = vec![0u8; size_mb * 1024 * 1024];
    rand::fill(&mut bytes[..]);
    std::fs::write(&path, &bytes).expect("write payload");
    let store = Store::new(&StoreSettings {
        url: StorageUrl::parse(&format!("s3://{bucket}/throughput")).expect("bucket name"),
        endpoint: Some(endpoint.clone()),
        region: None,
        access_key_id: Some("AKIDBENCH".into()),
        secret_access_key: Some("bench-secret".into()),
        session_token: None,
    })
    .expect("store");
    let mut best = f64::MAX;
    for run in 0..3 {
        let start = Instant::now();
        let stored = store
            .put_file(
                &format!("throughput/run{run}.bin"),
                &path,
                &callcast::storage::ObjectHeaders::default(),
            )
            .await
            .expect("upload");
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "run {run}: {stored} bytes in {seconds:.2} s: {:.1} MB/s",
            stored as f64 / seconds / 1e6
        );
        best = best.min(seconds);
    }
    println!(
        "best: {:.1} MB/s ({size_mb} MiB file)",
        (size_mb * 1024 * 1024) as f64 / best / 1e6
    );
}
