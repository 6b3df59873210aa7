//! The shared `BlobStore` test suite. Every backend runs the same cases: the filesystem
//! always, S3 when `WHARF_TEST_S3_ENDPOINT` (and `_BUCKET`, `_REGION`, `_ACCESS_KEY`,
//! `_SECRET_KEY`) name a bucket, as `scripts/test.sh` does with a Garage it starts.

use bytes::Bytes;
use futures_util::StreamExt;
use wharf_oci::{ByteRange, Digest, DigestAlgorithm, Hasher, UploadId};
use wharf_storage::{BlobStore, ByteStream, FsStore, S3Config, S3Store, StorageError};

fn id(n: u8) -> UploadId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

fn body(chunks: &[&[u8]]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(items))
}

async fn read_all(store: &BlobStore, d: &Digest, range: Option<ByteRange>) -> Vec<u8> {
    let mut s = store.blob_read(d, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Appends `chunks` at `offset` from `state`; returns the new length, hasher and state.
async fn append(
    store: &BlobStore,
    u: &UploadId,
    offset: u64,
    state: Option<&str>,
    chunks: &[&[u8]],
    hasher: Option<Hasher>,
    size_hint: Option<u64>,
) -> wharf_storage::Appended {
    store
        .upload_append(
            u,
            offset,
            state,
            body(chunks),
            hasher,
            1 << 30,
            size_hint,
            false,
        )
        .await
        .unwrap()
}

async fn suite(store: BlobStore) {
    // Appends hash as they go and commit under the content address.
    let u = id(1);
    let a = append(
        &store,
        &u,
        0,
        None,
        &[b"hello ", b"wor"],
        Some(Hasher::new(DigestAlgorithm::Sha256)),
        Some(9), // small: hashed on the writer thread
    )
    .await;
    assert_eq!(a.len, 9);
    // The running hash survives being saved and restored (another node continues).
    let hasher = Hasher::restore(&a.hasher.unwrap().save()).unwrap();
    let b = append(
        &store,
        &u,
        9,
        a.state.as_deref(),
        &[b"ld"],
        Some(hasher),
        Some(1 << 30),
    )
    .await;
    assert_eq!(b.len, 11);
    let streamed = b.hasher.unwrap().finish();
    let expected = Digest::sha256_of(b"hello world");
    assert_eq!(streamed, expected);
    store
        .upload_cleanup(&u, b.state.as_deref(), a.state.as_deref())
        .await
        .unwrap();
    // Without a streamed hash the store verifies, and places nothing on a mismatch.
    let wrong = Digest::sha256_of(b"something else");
    let err = store
        .upload_commit(&u, 11, b.state.as_deref(), None, &wrong, true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::DigestMismatch(d) if *d == expected),
        "{err}"
    );
    assert_eq!(store.blob_size(&wrong).await.unwrap(), None);
    store
        .upload_commit(&u, 11, b.state.as_deref(), None, &expected, true)
        .await
        .unwrap();
    assert_eq!(store.blob_size(&expected).await.unwrap(), Some(11));
    assert_eq!(read_all(&store, &expected, None).await, b"hello world");
    assert_eq!(
        read_all(&store, &expected, Some(ByteRange { start: 6, end: 10 })).await,
        b"world"
    );
    assert!(
        store.upload_ids().await.unwrap().is_empty(),
        "a committed upload leaves no session bytes"
    );

    // An interrupted request's bytes are not part of the session: the next append starts
    // from the recorded offset and state.
    let u2 = id(2);
    let first = append(&store, &u2, 0, None, &[b"abc"], None, None).await;
    let _interrupted = append(
        &store,
        &u2,
        3,
        first.state.as_deref(),
        &[b"XYZ"],
        None,
        None,
    )
    .await;
    let c = append(
        &store,
        &u2,
        3,
        first.state.as_deref(),
        &[b"def"],
        None,
        None,
    )
    .await;
    assert_eq!(c.len, 6);
    let err = store
        .upload_commit(&u2, 6, c.state.as_deref(), None, &wrong, true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::DigestMismatch(d) if *d == Digest::sha256_of(b"abcdef")),
        "{err}"
    );

    // An append past what storage holds means the session's bytes are gone.
    let err = store
        .upload_append(
            &u2,
            100,
            c.state.as_deref(),
            body(&[b"x"]),
            None,
            1 << 20,
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UploadMissing(_)), "{err}");

    // The size limit is enforced while streaming.
    let err = store
        .upload_append(
            &u2,
            6,
            c.state.as_deref(),
            body(&[&[0u8; 100]]),
            None,
            50,
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge(50)), "{err}");

    // A body that fails mid-way reports it.
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"ok")),
        Err(std::io::Error::other("reset")),
    ]));
    let err = store
        .upload_append(
            &u2,
            6,
            c.state.as_deref(),
            failing,
            None,
            1 << 20,
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Body(_)), "{err}");

    // A last chunk may be held back and committed at once; committing the same content twice
    // is harmless; deleting is idempotent.
    let u3 = id(3);
    let last = store
        .upload_append(
            &u3,
            0,
            None,
            body(&[b"hello world"]),
            None,
            1 << 20,
            None,
            true,
        )
        .await
        .unwrap();
    store
        .upload_commit(&u3, 11, last.state.as_deref(), last.held, &expected, false)
        .await
        .unwrap();
    assert_eq!(read_all(&store, &expected, None).await, b"hello world");
    store.upload_delete(&u2, c.state.as_deref()).await.unwrap();
    store.upload_delete(&u2, c.state.as_deref()).await.unwrap();
    assert!(store.upload_ids().await.unwrap().is_empty());

    // Small puts, missing blobs, deletes.
    let empty = Digest::sha256_of(b"{}");
    store
        .blob_put(&empty, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(read_all(&store, &empty, None).await, b"{}");
    let missing = Digest::sha256_of(b"missing");
    assert_eq!(store.blob_size(&missing).await.unwrap(), None);
    assert!(matches!(
        store.blob_read(&missing, None).await,
        Err(StorageError::BlobMissing(_))
    ));
    store.blob_delete(&empty).await.unwrap();
    assert_eq!(store.blob_size(&empty).await.unwrap(), None);
    store.blob_delete(&empty).await.unwrap();
    store.check().await.unwrap();
}

/// An S3 store on the bucket the `WHARF_TEST_S3_*` variables name, under a fresh prefix; or
/// `None` (the test is skipped) when they are unset.
fn s3_store(part_size: u64) -> Option<BlobStore> {
    s3_store_with(part_size, 128 << 20)
}

fn s3_store_with(part_size: u64, part_memory: u64) -> Option<BlobStore> {
    let var = |k: &str| std::env::var(format!("WHARF_TEST_S3_{k}")).ok();
    let (endpoint, bucket) = (var("ENDPOINT")?, var("BUCKET")?);
    let mut c = S3Config::from_url(&format!(
        "s3://{bucket}/wharf-test-{}?endpoint={endpoint}&region={}&part_size={part_size}&part_memory={part_memory}",
        uuid::Uuid::new_v4().simple(),
        var("REGION").unwrap_or_else(|| "garage".into()),
    ))
    .unwrap();
    c.access_key_id = var("ACCESS_KEY");
    c.secret_access_key = var("SECRET_KEY");
    Some(BlobStore::S3(S3Store::open(c).unwrap()))
}

#[tokio::test]
async fn s3_backend() {
    let Some(store) = s3_store(5 << 20) else {
        eprintln!("WHARF_TEST_S3_ENDPOINT is not set: S3 suite skipped");
        return;
    };
    suite(store).await;
}

/// A multipart upload begun by one node is continued and finished by another: the state the
/// first returns is all the second needs. Parts are whole `part_size` bytes; the rest waits.
#[tokio::test]
async fn s3_upload_continues_on_another_node() {
    let Some(a) = s3_store(5 << 20) else {
        eprintln!("WHARF_TEST_S3_ENDPOINT is not set: S3 suite skipped");
        return;
    };
    let BlobStore::S3(inner) = &a else {
        unreachable!()
    };
    let b = BlobStore::S3(inner.clone()); // same bucket and prefix, no shared memory
    let data: Vec<u8> = (0..(12u32 << 20) + 12345)
        .map(|i| (i % 251) as u8)
        .collect();
    let u = id(7);
    let (one, rest) = data.split_at(3 << 20);
    let (two, three) = rest.split_at(6 << 20);
    let s1 = append(
        &a,
        &u,
        0,
        None,
        &[one],
        Some(Hasher::new(DigestAlgorithm::Sha256)),
        None,
    )
    .await;
    let h = Hasher::restore(&s1.hasher.unwrap().save());
    let s2 = append(
        &b,
        &u,
        s1.len,
        s1.state.as_deref(),
        &[&two[..1 << 20], &two[1 << 20..]],
        h,
        None,
    )
    .await;
    b.upload_cleanup(&u, s2.state.as_deref(), s1.state.as_deref())
        .await
        .unwrap();
    let h = Hasher::restore(&s2.hasher.unwrap().save());
    let s3 = a
        .upload_append(
            &u,
            s2.len,
            s2.state.as_deref(),
            body(&[three]),
            h,
            1 << 30,
            None,
            true,
        )
        .await
        .unwrap();
    assert_eq!(s3.len, data.len() as u64);
    let d = s3.hasher.unwrap().finish();
    assert_eq!(d, Digest::sha256_of(&data));
    b.upload_commit(&u, s3.len, s3.state.as_deref(), s3.held, &d, false)
        .await
        .unwrap();
    assert_eq!(read_all(&a, &d, None).await, data);
    let r = ByteRange {
        start: 5 << 20,
        end: (7 << 20) - 1,
    };
    assert_eq!(read_all(&b, &d, Some(r)).await, &data[5 << 20..7 << 20]);
    assert!(
        a.upload_ids().await.unwrap().is_empty(),
        "no upload objects are left"
    );
}
#[tokio::test]
async fn filesystem_backend() {
    let dir = tempfile::tempdir().unwrap();
    suite(BlobStore::Fs(FsStore::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn large_blob_streams_without_buffering_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::Fs(FsStore::open(dir.path()).unwrap());
    let u = id(9);
    let chunk = Bytes::from(vec![0xabu8; 1 << 20]);
    let items: Vec<std::io::Result<Bytes>> = (0..32).map(|_| Ok(chunk.clone())).collect();
    let a = store
        .upload_append(
            &u,
            0,
            None,
            Box::pin(futures_util::stream::iter(items)),
            Some(Hasher::new(DigestAlgorithm::Sha256)),
            1 << 40,
            None, // unknown size: hashed on its own thread, flushed early
            false,
        )
        .await
        .unwrap();
    assert_eq!(a.len, 32 << 20);
    let d = a.hasher.unwrap().finish();
    store
        .upload_commit(&u, a.len, None, None, &d, false)
        .await
        .unwrap();
    let mut s = store.blob_read(&d, None).await.unwrap();
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    let mut n = 0usize;
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        assert!(c.len() <= 1 << 20, "reads come in bounded chunks");
        n += c.len();
        h.update(&c);
    }
    assert_eq!(n, 32 << 20);
    assert_eq!(h.finish(), d);
}

/// More uploads than the node's part memory has room for all finish: they wait for each
/// other's parts to be written instead of holding more memory (or deadlocking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_uploads_share_a_bounded_part_memory() {
    // Room for two 5 MiB parts on the whole node; six uploads of 12 MiB each.
    let Some(store) = s3_store_with(5 << 20, 10 << 20) else {
        eprintln!("WHARF_TEST_S3_ENDPOINT is not set: S3 suite skipped");
        return;
    };
    let mut tasks = Vec::new();
    for n in 0..6u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..12u32 << 20).map(|i| (i as u8) ^ n).collect();
            let u = id(0x40 + n);
            let chunks: Vec<&[u8]> = data.chunks(256 << 10).collect();
            let a = store
                .upload_append(
                    &u,
                    0,
                    None,
                    body(&chunks),
                    Some(Hasher::new(DigestAlgorithm::Sha256)),
                    1 << 30,
                    None,
                    true,
                )
                .await
                .unwrap();
            let d = a.hasher.unwrap().finish();
            assert_eq!(d, Digest::sha256_of(&data));
            store
                .upload_commit(&u, a.len, a.state.as_deref(), a.held, &d, false)
                .await
                .unwrap();
            (d, data)
        }));
    }
    let done = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
    .await
    .expect("uploads sharing part memory finish");
    for (d, data) in done {
        assert_eq!(read_all(&store, &d, None).await, data);
    }
}
