//! The shared database test suite: the same cases run on every backend (SQLite always;
//! PostgreSQL joins with scale-out).

use wharf_db::{Db, DbError, NewManifest};
use wharf_oci::{Digest, RepoName, UploadId};

fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn manifest<'a>(
    d: &'a Digest,
    payload: &'a [u8],
    blobs: Vec<String>,
    tag: Option<&'a str>,
    subject: Option<&'a Digest>,
) -> NewManifest<'a> {
    NewManifest {
        digest: d,
        media_type: "application/vnd.oci.image.manifest.v1+json",
        artifact_type: Some("application/vnd.example"),
        subject,
        annotations: None,
        payload,
        blobs,
        children: vec![],
        tag,
    }
}

async fn suite(db: Db) {
    let repo = db.ensure_repo(&name("me/app")).await.unwrap();
    assert_eq!(
        db.ensure_repo(&name("me/app")).await.unwrap(),
        repo,
        "ensure_repo is idempotent"
    );
    let other = db.ensure_repo(&name("me/other")).await.unwrap();

    // Blobs are visible per repository.
    let layer = Digest::sha256_of(b"layer");
    db.commit_blob(repo, &layer, 5, None).await.unwrap();
    db.commit_blob(repo, &layer, 5, None).await.unwrap();
    assert_eq!(db.repo_blob_size(repo, &layer).await.unwrap(), Some(5));
    assert_eq!(db.repo_blob_size(other, &layer).await.unwrap(), None);
    assert_eq!(db.mount_blob(other, repo, &layer).await.unwrap(), Some(5));
    assert_eq!(db.repo_blob_size(other, &layer).await.unwrap(), Some(5));
    let nowhere = db.ensure_repo(&name("me/empty")).await.unwrap();
    assert_eq!(db.mount_blob(other, nowhere, &layer).await.unwrap(), None);

    // A manifest naming a blob the repository lacks is refused, and nothing is recorded.
    let payload = b"{\"m\":1}";
    let md = Digest::sha256_of(payload);
    let missing = Digest::sha256_of(b"missing").to_string();
    let err = db
        .put_manifest(
            repo,
            manifest(
                &md,
                payload,
                vec![layer.to_string(), missing.clone()],
                Some("v1"),
                None,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::MissingReferences(m) if m == &vec![missing.clone()]),
        "{err}"
    );
    assert!(db.manifest_by_digest(repo, &md).await.unwrap().is_none());
    assert!(db.tags(repo, None, 10).await.unwrap().is_empty());

    let out = db
        .put_manifest(
            repo,
            manifest(&md, payload, vec![layer.to_string()], Some("v1"), None),
        )
        .await
        .unwrap();
    assert!(out.created);
    let again = db
        .put_manifest(
            repo,
            manifest(&md, payload, vec![layer.to_string()], Some("v2"), None),
        )
        .await
        .unwrap();
    assert!(!again.created);
    let got = db.manifest_by_tag(repo, "v2").await.unwrap().unwrap();
    assert_eq!(got.digest, md.to_string());
    assert_eq!(got.payload, payload);

    // Tags paginate in lexical order.
    for t in ["b", "a", "c"] {
        db.put_manifest(repo, manifest(&md, payload, vec![], Some(t), None))
            .await
            .unwrap();
    }
    assert_eq!(db.tags(repo, None, 3).await.unwrap(), ["a", "b", "c"]);
    assert_eq!(db.tags(repo, Some("c"), 10).await.unwrap(), ["v1", "v2"]);

    // Referrers, filtered by artifact type.
    let rp = b"{\"r\":1}";
    let rd = Digest::sha256_of(rp);
    db.put_manifest(repo, manifest(&rd, rp, vec![], None, Some(&md)))
        .await
        .unwrap();
    let refs = db.referrers(repo, &md, None, None, 10).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, rd.to_string());
    assert!(
        db.referrers(repo, &md, Some("application/other"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting a manifest removes its tags.
    assert!(db.delete_tag(repo, "a").await.unwrap());
    assert!(!db.delete_tag(repo, "a").await.unwrap());
    assert!(db.delete_manifest(repo, &md).await.unwrap());
    assert!(db.tags(repo, None, 10).await.unwrap().is_empty());
    assert!(db.unlink_blob(repo, &layer).await.unwrap());
    assert_eq!(db.repo_blob_size(other, &layer).await.unwrap(), Some(5));

    // Upload offsets move by compare-and-swap.
    let u: UploadId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
    db.upload_create(&u, repo).await.unwrap();
    assert!(db.upload_advance(&u, 0, 10).await.unwrap());
    assert!(
        !db.upload_advance(&u, 0, 20).await.unwrap(),
        "a stale offset loses"
    );
    assert_eq!(db.upload_get(&u).await.unwrap().unwrap().offset, 10);
    let blob = Digest::sha256_of(b"0123456789");
    assert!(matches!(
        db.commit_blob(repo, &blob, 10, Some((&u, 0))).await,
        Err(DbError::UploadMoved(_))
    ));
    assert_eq!(
        db.repo_blob_size(repo, &blob).await.unwrap(),
        None,
        "a failed commit records nothing"
    );
    db.commit_blob(repo, &blob, 10, Some((&u, 10)))
        .await
        .unwrap();
    assert!(
        db.upload_get(&u).await.unwrap().is_none(),
        "finishing ends the session"
    );

    // Concurrent commits are grouped; a job whose session moved fails alone.
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let u: UploadId = format!("00000000-0000-4000-8000-0000000001{i:02x}")
                .parse()
                .unwrap();
            db.upload_create(&u, repo).await.unwrap();
            let d = Digest::sha256_of(&[i]);
            // Job 7 claims a stale offset.
            let offset = if i == 7 { 5 } else { 0 };
            (i, db.commit_blob(repo, &d, 1, Some((&u, offset))).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let d = Digest::sha256_of(&[i]);
        if i == 7 {
            assert!(matches!(r, Err(DbError::UploadMoved(_))), "{r:?}");
            assert_eq!(db.repo_blob_size(repo, &d).await.unwrap(), None);
        } else {
            r.unwrap();
            assert_eq!(db.repo_blob_size(repo, &d).await.unwrap(), Some(1));
        }
    }

    // Catalog paginates.
    assert_eq!(db.catalog(None, 2).await.unwrap(), ["me/app", "me/empty"]);
    assert_eq!(db.catalog(Some("me/empty"), 2).await.unwrap(), ["me/other"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
    suite(db.clone()).await;
    db.close().await;
    // Reopening runs the migrations again without harm.
    let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
    assert_eq!(db.catalog(None, 10).await.unwrap().len(), 3);
}
