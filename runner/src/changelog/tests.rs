//! The change log's tests.

use super::*;
use crate::storage::SqliteStore;

fn recording(dir: &tempfile::TempDir, name: &str) -> RecordingStore {
    let store = SqliteStore::create(&dir.path().join(name), "t").unwrap();
    let mut db = RecordingStore::new(Box::new(store));
    db.create_collection("m", "c").unwrap();
    db
}

/// Writes in batches log what the same writes one by one log: counts,
/// digest and sample.
#[test]
fn batches_log_what_single_writes_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let records: Vec<(String, String)> = (0..130)
        .map(|n| (format!("r{n:03}"), format!(r#"{{"n":{n}}}"#)))
        // Past the sample, some records are written twice, unchanged.
        .chain((60..70).map(|n| (format!("r{n:03}"), format!(r#"{{"n":{n}}}"#))))
        .collect();
    let mut single = recording(&dir, "single");
    for (id, doc) in &records {
        single.put("m", "c", id, doc).unwrap();
    }
    let mut batched = recording(&dir, "batched");
    for batch in records.chunks(40) {
        batched.put_batch("m", "c", batch).unwrap();
    }
    let (single, batched) = (single.take_changes(), batched.take_changes());
    assert_eq!(batched[0].inserted, 130);
    assert_eq!(batched[0].updated, 0);
    assert_eq!(batched[0].samples.len(), SAMPLES);
    assert_eq!(single, batched);
}
