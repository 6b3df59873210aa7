//! The shared database test suite: the same cases run on every backend (SQLite always;
//! PostgreSQL joins with scale-out).

use wharf_db::{Db, DbError, NewManifest, NewTokenRow, OrgRole, UploadProgress};
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
    db.upload_create(&u, repo, Some("{}")).await.unwrap();
    let progress = |offset, hash: &'static [u8], store: &'static str| UploadProgress {
        offset,
        hash_state: Some(hash),
        store_state: Some(store),
    };
    assert!(
        db.upload_advance(&u, 0, progress(10, b"h10", "s10"))
            .await
            .unwrap()
    );
    assert!(
        !db.upload_advance(&u, 0, progress(20, b"h20", "s20"))
            .await
            .unwrap(),
        "a stale offset loses"
    );
    let row = db.upload_get(&u).await.unwrap().unwrap();
    assert_eq!(
        (
            row.offset,
            row.hash_state.as_deref(),
            row.store_state.as_deref()
        ),
        (10, Some(&b"h10"[..]), Some("s10")),
        "the winner's hash and storage state are kept with the offset"
    );
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
            db.upload_create(&u, repo, None).await.unwrap();
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
    // Byte order, as the distribution spec's lexical order, on every engine.
    db.ensure_repo(&name("me/app-b")).await.unwrap();
    db.ensure_repo(&name("me/app_b")).await.unwrap();
    assert_eq!(
        db.catalog(Some("me/app"), 3).await.unwrap(),
        ["me/app-b", "me/app_b", "me/empty"]
    );

    accounts(&db).await;
    rate_counters(&db).await;
}

/// Counts added by several nodes add up; old windows are pruned, pull and API counters each
/// by their own cutoff.
async fn rate_counters(db: &Db) {
    let add = |w: i64, key: &str, n: i64| {
        let key = key.to_owned();
        async move { db.add_rate_hits(w, &[(key, n)]).await.unwrap() }
    };
    assert_eq!(
        add(100, "ip:192.0.2.1", 2).await,
        [("ip:192.0.2.1".to_owned(), 2)]
    );
    assert_eq!(
        add(100, "ip:192.0.2.1", 3).await,
        [("ip:192.0.2.1".to_owned(), 5)]
    );
    add(100, "api:ip:192.0.2.1", 7).await;
    add(200, "ip:192.0.2.1", 1).await;
    let keys = ["ip:192.0.2.1".to_owned(), "api:ip:192.0.2.1".to_owned()];
    assert_eq!(db.rate_hits(100, &keys).await.unwrap().len(), 2);
    // API counters of window 100 go, pull counters of window 100 stay.
    assert_eq!(db.prune_rate_counters(50, 150).await.unwrap(), 1);
    assert_eq!(
        db.rate_hits(100, &keys).await.unwrap(),
        [("ip:192.0.2.1".to_owned(), 5)]
    );
    assert_eq!(db.prune_rate_counters(150, 150).await.unwrap(), 1);
    assert!(db.rate_hits(100, &keys).await.unwrap().is_empty());
    assert_eq!(db.rate_hits(200, &keys).await.unwrap().len(), 1);
}

async fn accounts(db: &Db) {
    let alice = db
        .create_user("alice", "alice@example.com", "hash", true)
        .await
        .unwrap();
    let bob = db
        .create_user("bob", "bob@example.com", "hash", false)
        .await
        .unwrap();
    assert_ne!(alice, bob);
    assert!(matches!(
        db.create_user("alice", "other@example.com", "hash", false)
            .await,
        Err(DbError::NameTaken(_))
    ));
    assert!(matches!(
        db.create_user("carol", "bob@example.com", "hash", false)
            .await,
        Err(DbError::NameTaken(_))
    ));
    let u = db.user_by_name("alice").await.unwrap().unwrap();
    assert!(u.is_admin && u.id == alice && u.email == "alice@example.com");

    db.create_org("acme", alice).await.unwrap();
    assert!(matches!(
        db.create_org("bob", alice).await,
        Err(DbError::NameTaken(_))
    ));
    assert!(
        db.set_org_member("acme", bob, OrgRole::Editor)
            .await
            .unwrap()
    );
    assert!(
        !db.set_org_member("nope", bob, OrgRole::Editor)
            .await
            .unwrap()
    );
    assert_eq!(
        db.org_role("acme", bob).await.unwrap(),
        Some(OrgRole::Editor)
    );
    assert_eq!(db.org_member_count("acme").await.unwrap(), 2);
    let members = db.org_members("acme", 0, 10).await.unwrap();
    assert_eq!(members[0], ("alice".to_string(), OrgRole::Owner));

    assert!(db.create_team("acme", "devs").await.unwrap());
    let team = db.team_id("acme", "devs").await.unwrap().unwrap();
    db.add_team_member(team, bob).await.unwrap();
    let repo = name("acme/app");
    db.grant_repo_permission(&repo, true, team, wharf_db::RepoPermission::Write)
        .await
        .unwrap();
    assert_eq!(
        db.repo_permission("acme/app", bob).await.unwrap(),
        Some(wharf_db::RepoPermission::Write)
    );
    assert_eq!(db.repo_permission("acme/app", alice).await.unwrap(), None);
    db.set_repo_private(&repo, true).await.unwrap();
    assert!(db.repo_is_private("acme/app").await.unwrap());
    assert_eq!(
        db.teams("acme", 0, 10).await.unwrap(),
        (1, vec![("devs".to_string(), 1)])
    );

    db.create_access_token(NewTokenRow {
        id: "t1",
        user_id: bob,
        label: "ci",
        scope: "read",
        secret_hash: "h1",
        expires_at: None,
        org: Some("acme"),
    })
    .await
    .unwrap();
    let (t, owner) = db.access_token_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(
        (t.org.as_deref(), owner.name.as_str()),
        (Some("acme"), "bob")
    );
    db.touch_access_token("t1").await.unwrap();
    assert!(
        db.access_token("t1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );
    assert!(db.revoke_access_token("t1").await.unwrap());
    assert!(!db.revoke_access_token("t1").await.unwrap());

    // Every node shares one signing secret: the first writer wins.
    let first = db.signing_secret(b"first").await.unwrap();
    assert_eq!(db.signing_secret(b"second").await.unwrap(), first);
    db.check_writable().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
    suite(db.clone()).await;
    db.close().await;
    // Reopening runs the migrations again without harm.
    let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
    assert_eq!(db.catalog(None, 10).await.unwrap().len(), 6);
}

/// A fresh PostgreSQL database on the server `WHARF_TEST_PG_URL` names, or `None` (the test
/// is skipped) when the variable is unset.
async fn fresh_postgres() -> Option<(String, impl AsyncFnOnce())> {
    use sqlx::Connection as _;
    let base = std::env::var("WHARF_TEST_PG_URL").ok()?;
    let name = format!("wharf_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{name}");
    let drop_it = async move || {
        // The pools are closed by now; a plain DROP also cancels autovacuum on the database.
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
    };
    Some((url, drop_it))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend() {
    let Some((url, drop_db)) = fresh_postgres().await else {
        eprintln!("WHARF_TEST_PG_URL is not set: PostgreSQL suite skipped");
        return;
    };
    // Several nodes starting at once: the migrations run once, under the advisory lock.
    let opened = futures_util::future::join_all((0..4).map(|_| Db::open_postgres(&url, 4))).await;
    let dbs: Vec<Db> = opened.into_iter().map(|r| r.unwrap()).collect();
    suite(dbs[0].clone()).await;
    // What one node wrote, another sees at once.
    let other = &dbs[1];
    assert_eq!(other.catalog(None, 100).await.unwrap().len(), 6);
    for db in &dbs {
        db.close().await;
    }
    drop_db().await;
}
