//! The shared `BlobStore` test suite. Every backend runs the same cases (the filesystem always;
//! S3 joins when it lands).

use bytes::Bytes;
use futures_util::StreamExt;
use wharf_oci::{ByteRange, Digest, DigestAlgorithm, Hasher, UploadId};
use wharf_storage::{BlobStore, ByteStream, FsStore, StorageError};

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

async fn suite(store: BlobStore) {
    // Appends hash as they go and commit under the content address.
    let u = id(1);
    store.upload_create(&u).await.unwrap();
    let a = store
        .upload_append(
            &u,
            0,
            body(&[b"hello ", b"wor"]),
            Some(Hasher::new(DigestAlgorithm::Sha256)),
            1 << 20,
            Some(9), // small: hashed on the writer thread
        )
        .await
        .unwrap();
    assert_eq!(a.len, 9);
    let b = store
        .upload_append(&u, 9, body(&[b"ld"]), a.hasher, 1 << 20, Some(1 << 30))
        .await
        .unwrap();
    assert_eq!(b.len, 11);
    let streamed = b.hasher.unwrap().finish();
    let expected = Digest::sha256_of(b"hello world");
    assert_eq!(streamed, expected);
    // The same digest computed from storage, as after a restart.
    assert_eq!(
        store
            .upload_digest(&u, 11, DigestAlgorithm::Sha256)
            .await
            .unwrap(),
        expected
    );
    store.upload_commit(&u, 11, &expected).await.unwrap();
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

    // Bytes past the recorded offset (an interrupted request) are dropped by the next append.
    let u2 = id(2);
    store.upload_create(&u2).await.unwrap();
    store
        .upload_append(&u2, 0, body(&[b"abcXYZ"]), None, 1 << 20, None)
        .await
        .unwrap();
    let c = store
        .upload_append(&u2, 3, body(&[b"def"]), None, 1 << 20, None)
        .await
        .unwrap();
    assert_eq!(c.len, 6);
    let d = store
        .upload_digest(&u2, 6, DigestAlgorithm::Sha256)
        .await
        .unwrap();
    assert_eq!(d, Digest::sha256_of(b"abcdef"));

    // An append past what storage holds means the session's bytes are gone.
    let err = store
        .upload_append(&u2, 100, body(&[b"x"]), None, 1 << 20, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UploadMissing(_)), "{err}");

    // The size limit is enforced while streaming.
    let err = store
        .upload_append(&u2, 6, body(&[&[0u8; 100]]), None, 50, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge(50)), "{err}");

    // A body that fails mid-way reports it.
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"ok")),
        Err(std::io::Error::other("reset")),
    ]));
    let err = store
        .upload_append(&u2, 6, failing, None, 1 << 20, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Body(_)), "{err}");

    // Committing the same content twice is harmless; deleting is idempotent.
    let u3 = id(3);
    store.upload_create(&u3).await.unwrap();
    store
        .upload_append(&u3, 0, body(&[b"hello world"]), None, 1 << 20, None)
        .await
        .unwrap();
    store.upload_commit(&u3, 11, &expected).await.unwrap();
    assert_eq!(read_all(&store, &expected, None).await, b"hello world");
    store.upload_delete(&u2).await.unwrap();
    store.upload_delete(&u2).await.unwrap();
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
    store.upload_create(&u).await.unwrap();
    let chunk = Bytes::from(vec![0xabu8; 1 << 20]);
    let items: Vec<std::io::Result<Bytes>> = (0..32).map(|_| Ok(chunk.clone())).collect();
    let a = store
        .upload_append(
            &u,
            0,
            Box::pin(futures_util::stream::iter(items)),
            Some(Hasher::new(DigestAlgorithm::Sha256)),
            1 << 40,
            None, // unknown size: hashed on its own thread, flushed early
        )
        .await
        .unwrap();
    assert_eq!(a.len, 32 << 20);
    let d = a.hasher.unwrap().finish();
    store.upload_commit(&u, a.len, &d).await.unwrap();
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
