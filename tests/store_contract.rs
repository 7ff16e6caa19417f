//! The metadata-store contract: the same tests against SQLite and MySQL.
//! MySQL runs with `AGENSIUM_TEST_MYSQL_URL` (required in CI by `AGENSIUM_REQUIRE_MYSQL=1`).

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;

use agensium::domain::{
    ColumnInfo, Conversation, ConversationId, Dataset, DatasetFormat, DatasetId, DatasetKind, Email, Job,
    JobError, JobId, JobStatus, LlmUsage, MessageRole, NewMessage, NewUser, Role, UsageTotals, UserId,
};
use agensium::store::{
    JobFilter, JobOutcome, MetadataStore, MysqlStore, NewRefreshToken, PageRequest, Replacement,
    RotateOutcome, SqliteStore, StoreError, now,
};
use chrono::Duration;
use uuid::Uuid;

struct Fixture {
    store: Arc<dyn MetadataStore>,
    /// A second, independent handle on the same database (another "instance").
    second: Arc<dyn MetadataStore>,
    _dir: tempfile::TempDir,
    _mysql: Option<helpers::MysqlDatabase>,
}

async fn fixture(backend: helpers::Store) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    Some(match backend {
        helpers::Store::Sqlite => {
            let path = dir.path().join("meta.sqlite3");
            Fixture {
                store: Arc::new(SqliteStore::open(&path).await.unwrap()),
                second: Arc::new(SqliteStore::open(&path).await.unwrap()),
                _dir: dir,
                _mysql: None,
            }
        }
        helpers::Store::Mysql => {
            let db = helpers::MysqlDatabase::create().await?;
            Fixture {
                store: Arc::new(MysqlStore::connect(&db.url).await.unwrap()),
                second: Arc::new(MysqlStore::connect(&db.url).await.unwrap()),
                _dir: dir,
                _mysql: Some(db),
            }
        }
    })
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        role: Role::User,
        created_at: now(),
    }
}

fn token(user: UserId, family: Uuid, hash: &str, ttl: Duration) -> NewRefreshToken {
    let created_at = now();
    NewRefreshToken {
        id: Uuid::now_v7(),
        family_id: family,
        user_id: user,
        token_hash: hash.into(),
        created_at,
        expires_at: created_at + ttl,
    }
}

fn dataset(owner: UserId, parent: Option<&Dataset>) -> Dataset {
    let id = DatasetId::generate();
    Dataset {
        id,
        owner_id: owner,
        root_id: parent.map_or(id, |p| p.root_id),
        parent_id: parent.map(|p| p.id),
        kind: if parent.is_some() { DatasetKind::Cleaned } else { DatasetKind::Upload },
        name: "sales.csv".into(),
        format: DatasetFormat::Csv,
        original_filename: "sales.csv".into(),
        size_bytes: 1234,
        sha256: "ab".repeat(32),
        row_count: 10,
        columns: vec![ColumnInfo { name: "region".into(), data_type: "VARCHAR".into() }],
        rejected_row_count: 1,
        notices: vec!["column 2 had no name; it is called column1".into()],
        created_at: now(),
    }
}

fn job(owner: UserId, dataset: &Dataset) -> Job {
    Job::queued(
        owner,
        "profile-my-data".into(),
        vec!["unified-profiler".into()],
        serde_json::json!({ "unified-profiler": { "top_n_values": 5 } }),
        dataset.id,
        None,
        now(),
    )
}

/// A user with one dataset, ready for jobs.
async fn owner_with_dataset(store: &dyn MetadataStore, email: &str) -> (UserId, Dataset) {
    let owner = store.create_user(&new_user(email)).await.unwrap().id;
    let data = dataset(owner, None);
    store.insert_dataset(&data).await.unwrap();
    (owner, data)
}

fn conversation(owner: UserId, dataset: Option<&Dataset>, job: Option<&Job>, title: &str) -> Conversation {
    let created_at = now();
    Conversation {
        id: ConversationId::generate(),
        owner,
        dataset: dataset.map(|d| d.id),
        job: job.map(|j| j.id),
        title: title.into(),
        created_at,
        updated_at: created_at,
    }
}

fn message(role: MessageRole, content: &str) -> NewMessage {
    NewMessage {
        role,
        content: content.into(),
        sources: Vec::new(),
        model: (role == MessageRole::Assistant).then(|| "rule-based".into()),
    }
}

fn usage(
    owner: UserId,
    job: Option<JobId>,
    conversation: Option<ConversationId>,
    prompt: u64,
    completion: u64,
) -> LlmUsage {
    LlmUsage {
        owner,
        job,
        conversation,
        purpose: if job.is_some() { "summary" } else { "copilot" }.into(),
        model: "gpt-test".into(),
        prompt_tokens: prompt,
        completion_tokens: completion,
        created_at: now(),
    }
}

fn replacement(hash: &str) -> Replacement {
    Replacement { id: Uuid::now_v7(), token_hash: hash.into(), expires_at: now() + Duration::days(1) }
}

macro_rules! contract {
    ($( async fn $name:ident($f:ident) $body:block )*) => {
        mod sqlite {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let $f = fixture(helpers::Store::Sqlite).await.unwrap(); $f.store.migrate().await.unwrap(); $body } )*
        }
        mod mysql {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let Some($f) = fixture(helpers::Store::Mysql).await else { return }; $f.store.migrate().await.unwrap(); $body } )*
        }
    };
}

contract! {
    async fn migrations_run_once_and_concurrently(f) {
        let again = f.store.migrate().await.unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.already_applied, vec![1, 2, 3, 4, 5, 6]);
        let (a, b) = tokio::join!(f.store.migrate(), f.second.migrate());
        assert!(a.unwrap().applied.is_empty() && b.unwrap().applied.is_empty());
        f.store.ping().await.unwrap();
    }

    async fn users_round_trip_and_emails_are_unique(f) {
        let ada = new_user("ada@example.com");
        let created = f.store.create_user(&ada).await.unwrap();
        assert_eq!(f.store.user_by_id(ada.id).await.unwrap(), Some(created.clone()));
        assert_eq!(f.second.user_by_id(ada.id).await.unwrap(), Some(created.clone()), "visible to another instance");
        let creds = f.store.credentials_by_email(&ada.email).await.unwrap().unwrap();
        assert_eq!(creds.user, created);
        assert_eq!(creds.password_hash, ada.password_hash);
        assert!(matches!(f.store.create_user(&new_user("ada@example.com")).await, Err(StoreError::Conflict(_))));
        assert!(f.store.user_by_id(UserId::generate()).await.unwrap().is_none());
        assert!(f.store.credentials_by_email(&Email::parse("bob@example.com").unwrap()).await.unwrap().is_none());
        let bob = f.store.create_user(&new_user("bob@example.com")).await.unwrap();
        let mut both = f.store.users_by_ids(&[ada.id, bob.id, UserId::generate()]).await.unwrap();
        both.sort_by_key(|u| u.id);
        assert_eq!(both, vec![created, bob]);
        assert!(f.store.users_by_ids(&[]).await.unwrap().is_empty());
    }

    async fn users_page_newest_first(f) {
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(f.store.create_user(&new_user(&format!("u{i}@example.com"))).await.unwrap().id);
        }
        let page = f.store.list_users(&PageRequest { first: 2, after: None }).await.unwrap();
        assert_eq!(page.total_count, 5);
        assert!(page.has_next_page);
        assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
        let rest = f.store.list_users(&PageRequest { first: 10, after: Some(ids[3].0) }).await.unwrap();
        assert!(!rest.has_next_page);
        assert_eq!(rest.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![ids[2], ids[1], ids[0]]);
    }

    async fn concurrent_writes_never_fail(f) {
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = if i % 2 == 0 { f.store.clone() } else { f.second.clone() };
            tasks.push(tokio::spawn(async move { store.create_user(&new_user(&format!("c{i}@example.com"))).await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(f.store.list_users(&PageRequest { first: 1, after: None }).await.unwrap().total_count, 40);
    }

    async fn refresh_tokens_rotate_once_and_replays_revoke_the_family(f) {
        let user = f.store.create_user(&new_user("ada@example.com")).await.unwrap();
        let family = Uuid::now_v7();
        f.store.insert_refresh_token(&token(user.id, family, "h1", Duration::days(1))).await.unwrap();

        let outcome = f.store.rotate_refresh_token("h1", &replacement("h2"), now()).await.unwrap();
        assert_eq!(outcome, RotateOutcome::Rotated { user_id: user.id });
        let h2 = f.store.refresh_token("h2").await.unwrap().unwrap();
        assert_eq!(h2.family_id, family);
        assert!(f.store.refresh_token("h1").await.unwrap().unwrap().used_at.is_some());

        // Replaying h1 revokes h2 too.
        let replay = f.store.rotate_refresh_token("h1", &replacement("h3"), now()).await.unwrap();
        assert_eq!(replay, RotateOutcome::Reused { user_id: user.id });
        assert!(f.store.refresh_token("h2").await.unwrap().unwrap().revoked_at.is_some());
        assert!(f.store.refresh_token("h3").await.unwrap().is_none());
        assert_eq!(f.store.rotate_refresh_token("h2", &replacement("h4"), now()).await.unwrap(), RotateOutcome::Revoked);
        assert_eq!(f.store.rotate_refresh_token("nope", &replacement("h5"), now()).await.unwrap(), RotateOutcome::Unknown);
    }

    async fn expired_and_signed_out_tokens_do_not_rotate(f) {
        let user = f.store.create_user(&new_user("ada@example.com")).await.unwrap();
        f.store.insert_refresh_token(&token(user.id, Uuid::now_v7(), "old", Duration::seconds(-1))).await.unwrap();
        assert_eq!(f.store.rotate_refresh_token("old", &replacement("x"), now()).await.unwrap(), RotateOutcome::Expired);

        f.store.insert_refresh_token(&token(user.id, Uuid::now_v7(), "live", Duration::days(1))).await.unwrap();
        assert!(f.store.revoke_refresh_family("live", now()).await.unwrap());
        assert!(!f.store.revoke_refresh_family("missing", now()).await.unwrap());
        // Its family is revoked already: there is no session left to end.
        assert!(!f.store.revoke_refresh_family("live", now()).await.unwrap());
        assert_eq!(f.store.rotate_refresh_token("live", &replacement("y"), now()).await.unwrap(), RotateOutcome::Revoked);
    }

    async fn datasets_are_owner_scoped_versioned_and_deleted_with_their_versions(f) {
        let ada = f.store.create_user(&new_user("ada@example.com")).await.unwrap().id;
        let bob = f.store.create_user(&new_user("bob@example.com")).await.unwrap().id;
        let original = dataset(ada, None);
        f.store.insert_dataset(&original).await.unwrap();
        assert_eq!(f.store.dataset(original.id, ada).await.unwrap(), Some(original.clone()));
        assert_eq!(f.store.dataset(original.id, bob).await.unwrap(), None, "another owner sees nothing");
        let cleaned = dataset(ada, Some(&original));
        f.store.insert_dataset(&cleaned).await.unwrap();
        let again = dataset(ada, Some(&cleaned));
        f.store.insert_dataset(&again).await.unwrap();
        let versions = f.store.dataset_versions(original.id, ada).await.unwrap();
        assert_eq!(versions.iter().map(|d| d.id).collect::<Vec<_>>(), vec![original.id, cleaned.id, again.id]);
        assert!(f.store.dataset_versions(original.id, bob).await.unwrap().is_empty());
        f.store.insert_dataset(&dataset(bob, None)).await.unwrap();
        let mut batch = f.store.datasets_by_ids(ada, &[original.id, again.id, DatasetId::generate()]).await.unwrap();
        batch.sort_by_key(|d| d.id);
        assert_eq!(batch.iter().map(|d| d.id).collect::<Vec<_>>(), vec![original.id, again.id]);
        assert!(f.store.datasets_by_ids(bob, &[original.id]).await.unwrap().is_empty(), "never across owners");

        let page = f.store.list_datasets(ada, &[], &PageRequest { first: 2, after: None }).await.unwrap();
        assert_eq!((page.total_count, page.has_next_page), (3, true));
        assert_eq!(page.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![again.id, cleaned.id]);
        // By kind; the family of a root holds the quarantined rows too.
        let quarantine = Dataset { kind: DatasetKind::Quarantine, ..dataset(ada, Some(&original)) };
        f.store.insert_dataset(&quarantine).await.unwrap();
        let uploads = f.store.list_datasets(ada, &[DatasetKind::Upload], &PageRequest { first: 10, after: None }).await.unwrap();
        assert_eq!((uploads.total_count, uploads.items.iter().map(|d| d.id).collect::<Vec<_>>()), (1, vec![original.id]));
        let derived = f.store.list_datasets(ada, &[DatasetKind::Cleaned, DatasetKind::Quarantine], &PageRequest { first: 10, after: None }).await.unwrap();
        assert_eq!(derived.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![quarantine.id, again.id, cleaned.id]);
        assert_eq!(derived.total_count, 3);
        assert_eq!(f.store.dataset(quarantine.id, ada).await.unwrap().map(|d| d.kind), Some(DatasetKind::Quarantine));
        let family = f.store.dataset_versions(original.id, ada).await.unwrap();
        assert_eq!(family.iter().map(|d| d.id).collect::<Vec<_>>(), vec![original.id, cleaned.id, again.id, quarantine.id]);

        assert!(!f.store.delete_dataset(cleaned.id, bob, &[cleaned.id, again.id]).await.unwrap(), "not bob's");
        assert!(f.store.delete_dataset(cleaned.id, ada, &[cleaned.id, again.id]).await.unwrap());
        // The version derived from it goes too; the original stays.
        assert_eq!(f.store.dataset(again.id, ada).await.unwrap(), None);
        assert!(f.store.dataset(original.id, ada).await.unwrap().is_some());
        assert_eq!(f.store.list_datasets(bob, &[], &PageRequest { first: 10, after: None }).await.unwrap().total_count, 1);
    }

    async fn concurrent_rotations_rotate_exactly_once(f) {
        let user = f.store.create_user(&new_user("ada@example.com")).await.unwrap();
        f.store.insert_refresh_token(&token(user.id, Uuid::now_v7(), "t", Duration::days(1))).await.unwrap();
        let (ra, rb) = (replacement("a"), replacement("b"));
        let (a, b) = tokio::join!(
            f.store.rotate_refresh_token("t", &ra, now()),
            f.second.rotate_refresh_token("t", &rb, now()),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let rotated = outcomes.iter().filter(|o| matches!(o, RotateOutcome::Rotated { .. })).count();
        assert_eq!(rotated, 1, "{outcomes:?}");
        assert!(outcomes.iter().any(|o| matches!(o, RotateOutcome::Reused { .. })), "{outcomes:?}");
    }

    async fn jobs_round_trip_owner_scoped_and_filtered(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let (bob, _) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let first = job(ada, &data);
        f.store.insert_job(&first).await.unwrap();
        let second = job(ada, &data);
        f.store.insert_job(&second).await.unwrap();
        assert_eq!(f.store.job(first.id, ada).await.unwrap(), Some(first.clone()));
        assert_eq!(f.store.job(first.id, bob).await.unwrap(), None, "another owner sees nothing");
        assert_eq!(f.store.jobs_ahead(first.id).await.unwrap(), 0);
        assert_eq!(f.store.jobs_ahead(second.id).await.unwrap(), 1);
        let page = f.store.list_jobs(ada, &JobFilter::default(), &PageRequest { first: 1, after: None }).await.unwrap();
        assert_eq!((page.total_count, page.has_next_page), (2, true));
        assert_eq!(page.items[0].id, second.id, "newest first");
        let queued = JobFilter { statuses: vec![JobStatus::Queued], tool_id: Some("profile-my-data".into()), dataset_id: None };
        assert_eq!(f.store.list_jobs(ada, &queued, &PageRequest { first: 10, after: None }).await.unwrap().total_count, 2);
        let other_tool = JobFilter { statuses: vec![], tool_id: Some("clean-my-data".into()), dataset_id: None };
        assert_eq!(f.store.list_jobs(ada, &other_tool, &PageRequest { first: 10, after: None }).await.unwrap().total_count, 0);
        assert_eq!(f.store.list_jobs(bob, &JobFilter::default(), &PageRequest { first: 10, after: None }).await.unwrap().total_count, 0);
        assert!(f.store.datasets_in_use(&[data.id]).await.unwrap());
        assert!(!f.store.datasets_in_use(&[DatasetId::generate()]).await.unwrap());
    }

    async fn one_owners_queue_does_not_hold_back_another_owners_job(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let (bob, bobs) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let mut adas = Vec::new();
        for _ in 0..3 {
            let queued = job(ada, &data);
            f.store.insert_job(&queued).await.unwrap();
            adas.push(queued.id);
        }
        let bobs_job = job(bob, &bobs);
        f.store.insert_job(&bobs_job).await.unwrap();
        // Turns: Ada's first and Bob's first, then Ada's second, then her third.
        let ahead = |id| f.store.jobs_ahead(id);
        assert_eq!(ahead(adas[0]).await.unwrap(), 0);
        assert_eq!(ahead(bobs_job.id).await.unwrap(), 1);
        assert_eq!(ahead(adas[1]).await.unwrap(), 2);
        assert_eq!(ahead(adas[2]).await.unwrap(), 3);
        let lease = now() + Duration::seconds(30);
        let first = f.store.claim_job("w1", now(), lease, 3).await.unwrap().unwrap();
        assert_eq!(first.id, adas[0]);
        // Ada has a job running: Bob's comes before her second.
        assert_eq!(ahead(bobs_job.id).await.unwrap(), 0);
        let second = f.second.claim_job("w2", now(), lease, 3).await.unwrap().unwrap();
        assert_eq!(second.id, bobs_job.id, "Bob's job is not held back by Ada's queue");
        let third = f.store.claim_job("w3", now(), lease, 3).await.unwrap().unwrap();
        assert_eq!(third.id, adas[1]);
        assert_eq!(ahead(adas[2]).await.unwrap(), 0);

        // When a job ends, its owner's next one waits for the owners served longer ago: Cy
        // queues after all of Ada's, and still runs before her third.
        let (cy, cys) = owner_with_dataset(&*f.store, "cy@example.com").await;
        let cys_job = job(cy, &cys);
        f.store.insert_job(&cys_job).await.unwrap();
        let outcome = JobOutcome { status: JobStatus::Completed, error: None, report: Some("{\"agents\":[]}".into()), output_dataset_id: None };
        for (claimed, worker) in [(&first, "w1"), (&second, "w2"), (&third, "w3")] {
            assert!(f.store.finish_job(claimed.id, worker, &outcome, now()).await.unwrap());
        }
        assert_eq!(ahead(cys_job.id).await.unwrap(), 0);
        assert_eq!(ahead(adas[2]).await.unwrap(), 1);
        let next = f.store.claim_job("w4", now(), lease, 3).await.unwrap().unwrap();
        assert_eq!(next.id, cys_job.id, "Ada was served last: Cy goes first");
        let last = f.second.claim_job("w5", now(), lease, 3).await.unwrap().unwrap();
        assert_eq!(last.id, adas[2]);
    }

    async fn a_job_is_claimed_once_run_and_finished_by_its_worker(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let queued = job(ada, &data);
        f.store.insert_job(&queued).await.unwrap();
        let lease = now() + Duration::seconds(30);
        // Two instances claim at once: exactly one gets the job.
        let (a, b) = tokio::join!(f.store.claim_job("w1", now(), lease, 3), f.second.claim_job("w2", now(), lease, 3));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() != b.is_some(), "{a:?} {b:?}");
        let (claimed, worker, other) = match a { Some(j) => (j, "w1", "w2"), None => (b.unwrap(), "w2", "w1") };
        assert_eq!((claimed.status, claimed.attempts), (JobStatus::Running, 1));
        assert!(claimed.started_at.is_some());

        // Progress never goes backwards, and only the holder may write it.
        assert!(f.store.record_progress(claimed.id, worker, 40.0, "statistics", now()).await.unwrap());
        assert!(f.store.record_progress(claimed.id, worker, 10.0, "again", now()).await.unwrap());
        let current = f.store.job_by_id(claimed.id).await.unwrap().unwrap();
        assert_eq!((current.progress, current.stage.as_deref()), (40.0, Some("again")));
        assert!(!f.store.record_progress(claimed.id, other, 90.0, "x", now()).await.unwrap());
        assert_eq!(f.store.renew_lease(claimed.id, worker, now() + Duration::seconds(30)).await.unwrap(), Some(false));
        assert_eq!(f.store.renew_lease(claimed.id, other, now() + Duration::seconds(30)).await.unwrap(), None);

        // Cancellation of a running job is a request its worker sees.
        let cancelled = f.store.cancel_job(claimed.id, ada, now()).await.unwrap().unwrap();
        assert_eq!((cancelled.status, cancelled.cancel_requested), (JobStatus::Running, true));
        assert_eq!(f.store.renew_lease(claimed.id, worker, now() + Duration::seconds(30)).await.unwrap(), Some(true));

        // A job asked to cancel cannot complete, even by its holder; it ends cancelled.
        let outcome = JobOutcome { status: JobStatus::Completed, error: None, report: Some("{\"agents\":[]}".into()), output_dataset_id: None };
        assert!(!f.store.finish_job(claimed.id, worker, &outcome, now()).await.unwrap());
        let cancel = JobOutcome { status: JobStatus::Cancelled, error: None, report: None, output_dataset_id: None };
        assert!(!f.store.finish_job(claimed.id, other, &cancel, now()).await.unwrap());
        assert!(f.store.finish_job(claimed.id, worker, &cancel, now()).await.unwrap());
        let done = f.store.job(claimed.id, ada).await.unwrap().unwrap();
        assert_eq!((done.status, done.progress), (JobStatus::Cancelled, 40.0));
        assert!(done.finished_at.is_some());
        assert_eq!(f.store.job_report(claimed.id, ada).await.unwrap(), None);
        assert!(!f.store.datasets_in_use(&[data.id]).await.unwrap());
        assert_eq!(f.store.claim_job("w3", now(), lease, 3).await.unwrap(), None, "nothing left to claim");
    }

    async fn the_holder_completes_a_job_with_its_report(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        f.store.insert_job(&job(ada, &data)).await.unwrap();
        let lease = now() + Duration::seconds(30);
        let claimed = f.store.claim_job("w1", now(), lease, 3).await.unwrap().unwrap();
        let outcome = JobOutcome { status: JobStatus::Completed, error: None, report: Some("{\"agents\":[]}".into()), output_dataset_id: None };
        assert!(!f.store.finish_job(claimed.id, "w2", &outcome, now()).await.unwrap());
        assert!(f.store.finish_job(claimed.id, "w1", &outcome, now()).await.unwrap());
        let done = f.store.job(claimed.id, ada).await.unwrap().unwrap();
        assert_eq!((done.status, done.progress, done.stage.as_deref()), (JobStatus::Completed, 100.0, Some("done")));
        assert!(done.finished_at.is_some());
        assert_eq!(f.store.job_report(claimed.id, ada).await.unwrap().as_deref(), Some("{\"agents\":[]}"));
        assert_eq!(f.store.job_report(claimed.id, UserId::generate()).await.unwrap(), None);
        assert!(!f.store.finish_job(claimed.id, "w1", &outcome, now()).await.unwrap(), "ended once");
    }

    async fn a_dead_workers_job_is_retried_then_fails_as_worker_lost(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let queued = job(ada, &data);
        f.store.insert_job(&queued).await.unwrap();
        // Each worker "dies" at once: its lease is already over.
        for attempt in 1..=2u32 {
            let expired = now() - Duration::seconds(1);
            let claimed = f.store.claim_job(&format!("w{attempt}"), now(), expired, 2).await.unwrap().unwrap();
            assert_eq!((claimed.id, claimed.attempts), (queued.id, attempt));
            f.store.record_progress(claimed.id, &format!("w{attempt}"), 30.0 * f64::from(attempt), "working", now()).await.unwrap();
        }
        // No attempts left: it is not claimed again, and the sweep fails it.
        assert_eq!(f.store.claim_job("w3", now(), now() + Duration::seconds(30), 2).await.unwrap(), None);
        assert_eq!(f.store.fail_lost_jobs(now(), 2).await.unwrap(), 1);
        let lost = f.store.job(queued.id, ada).await.unwrap().unwrap();
        assert_eq!(lost.status, JobStatus::Failed);
        assert_eq!(lost.error.as_ref().map(|e| e.code.as_str()), Some("WORKER_LOST"));
        assert_eq!(lost.progress, 60.0, "progress kept, never backwards");
        assert_eq!(f.store.fail_lost_jobs(now(), 2).await.unwrap(), 0);
        // A dead worker cannot write over the outcome.
        let late = JobOutcome { status: JobStatus::Completed, error: None, report: None, output_dataset_id: None };
        assert!(!f.store.finish_job(queued.id, "w2", &late, now()).await.unwrap());
    }

    async fn a_dead_workers_job_asked_to_cancel_ends_cancelled(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        // Its worker is gone (the lease is over): a cancel ends it at once.
        let first = job(ada, &data);
        f.store.insert_job(&first).await.unwrap();
        let claimed = f.store.claim_job("w1", now(), now() - Duration::seconds(1), 3).await.unwrap().unwrap();
        let cancelled = f.store.cancel_job(claimed.id, ada, now()).await.unwrap().unwrap();
        assert_eq!((cancelled.status, cancelled.cancel_requested), (JobStatus::Cancelled, true));
        assert!(cancelled.finished_at.is_some());
        // Asked while its worker lived, which then died: not run again, nor failed as lost.
        let second = job(ada, &data);
        f.store.insert_job(&second).await.unwrap();
        let claimed = f.store.claim_job("w2", now(), now() + Duration::seconds(30), 1).await.unwrap().unwrap();
        let asked = f.store.cancel_job(claimed.id, ada, now()).await.unwrap().unwrap();
        assert_eq!((asked.status, asked.cancel_requested), (JobStatus::Running, true));
        let later = now() + Duration::seconds(60);
        assert_eq!(f.store.claim_job("w3", later, later + Duration::seconds(30), 3).await.unwrap(), None);
        assert_eq!(f.store.fail_lost_jobs(later, 1).await.unwrap(), 0);
        let ended = f.store.job(claimed.id, ada).await.unwrap().unwrap();
        assert_eq!(ended.status, JobStatus::Cancelled);
        assert_eq!(ended.error, None);
        // With no worker at all, the API ends one once its lease is over (no sooner, and
        // only the owner's).
        let third = job(ada, &data);
        f.store.insert_job(&third).await.unwrap();
        let claimed = f.store.claim_job("w4", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        f.store.cancel_job(claimed.id, ada, now()).await.unwrap().unwrap();
        assert!(!f.store.cancel_orphaned_job(claimed.id, ada, now()).await.unwrap(), "its worker may be alive");
        let later = now() + Duration::seconds(60);
        let bob = f.store.create_user(&new_user("bob@example.com")).await.unwrap().id;
        assert!(!f.store.cancel_orphaned_job(claimed.id, bob, later).await.unwrap());
        assert!(f.store.cancel_orphaned_job(claimed.id, ada, later).await.unwrap());
        assert_eq!(f.store.job(claimed.id, ada).await.unwrap().unwrap().status, JobStatus::Cancelled);
    }

    async fn versions_of_jobs_that_did_not_complete_them_are_orphans(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let queued = job(ada, &data);
        f.store.insert_job(&queued).await.unwrap();
        // Attempt 1 publishes, then its worker dies (its lease is already over).
        let first = f.store.claim_job("w1", now(), now() - Duration::seconds(1), 3).await.unwrap().unwrap();
        let lost = dataset(ada, Some(&data));
        f.store.insert_job_output(&lost, first.id, first.attempts).await.unwrap();
        assert!(f.store.orphaned_outputs().await.unwrap().is_empty(), "attempt 1 may still complete");
        // Attempt 2 takes the job: attempt 1's version is an orphan, attempt 2's is not.
        let second = f.store.claim_job("w2", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        assert_eq!((second.id, second.attempts), (first.id, 2));
        let kept = dataset(ada, Some(&data));
        f.store.insert_job_output(&kept, second.id, second.attempts).await.unwrap();
        assert_eq!(f.store.orphaned_outputs().await.unwrap(), vec![(ada, lost.id)]);
        // Attempt 1, still alive (a paused machine), records nothing more.
        let late = dataset(ada, Some(&data));
        assert!(matches!(
            f.store.insert_job_output(&late, first.id, first.attempts).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(f.store.dataset(late.id, ada).await.unwrap(), None);
        let outcome = JobOutcome { status: JobStatus::Completed, error: None, report: None, output_dataset_id: Some(kept.id) };
        assert!(f.store.finish_job(second.id, "w2", &outcome, now()).await.unwrap());
        assert_eq!(f.store.orphaned_outputs().await.unwrap(), vec![(ada, lost.id)]);
        // A failed job's versions are orphans too; a deleted version is gone from the list.
        let other = job(ada, &data);
        f.store.insert_job(&other).await.unwrap();
        let claimed = f.store.claim_job("w3", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        let partial = dataset(ada, Some(&data));
        f.store.insert_job_output(&partial, claimed.id, claimed.attempts).await.unwrap();
        let failed = JobOutcome { status: JobStatus::Failed, error: Some(JobError { code: "X".into(), message: "x".into() }), report: None, output_dataset_id: None };
        assert!(f.store.finish_job(claimed.id, "w3", &failed, now()).await.unwrap());
        let mut orphans = f.store.orphaned_outputs().await.unwrap();
        orphans.sort_by_key(|(_, id)| id.0);
        let mut expected = vec![(ada, lost.id), (ada, partial.id)];
        expected.sort_by_key(|(_, id)| id.0);
        assert_eq!(orphans, expected);
        // One the user built on — a version derived from it, a job run on it — is theirs now.
        let derived = dataset(ada, Some(&lost));
        f.store.insert_dataset(&derived).await.unwrap();
        let profiled = job(ada, &partial);
        f.store.insert_job(&profiled).await.unwrap();
        assert!(f.store.orphaned_outputs().await.unwrap().is_empty());
        assert!(f.store.delete_dataset(derived.id, ada, &[derived.id]).await.unwrap());
        assert_eq!(f.store.orphaned_outputs().await.unwrap(), vec![(ada, lost.id)]);
        assert!(f.store.delete_dataset(lost.id, ada, &[lost.id]).await.unwrap());
        assert!(f.store.orphaned_outputs().await.unwrap().is_empty());
    }

    async fn the_versions_of_the_attempt_that_completed_a_job_are_never_orphans(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let run = job(ada, &data);
        f.store.insert_job(&run).await.unwrap();
        // Attempt 1 publishes its cleaned rows and quarantine; its lease runs out and the job
        // is claimed again; then attempt 1's result is the one recorded.
        let first = f.store.claim_job("w", now(), now() - Duration::seconds(1), 3).await.unwrap().unwrap();
        let (cleaned, quarantine) = (dataset(ada, Some(&data)), dataset(ada, Some(&data)));
        f.store.insert_job_output(&cleaned, first.id, first.attempts).await.unwrap();
        f.store.insert_job_output(&quarantine, first.id, first.attempts).await.unwrap();
        let second = f.store.claim_job("w", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        assert_eq!(second.attempts, 2);
        let outcome =
            JobOutcome { status: JobStatus::Completed, error: None, report: None, output_dataset_id: Some(cleaned.id) };
        assert!(f.store.finish_job(first.id, "w", &outcome, now()).await.unwrap());
        assert_eq!(f.store.orphaned_outputs().await.unwrap(), vec![], "the job's output and its quarantine");
    }

    async fn a_long_stage_or_error_message_is_cut_not_refused(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let run = job(ada, &data);
        f.store.insert_job(&run).await.unwrap();
        let claimed = f.store.claim_job("w", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        // (MySQL keeps 255 characters of a stage and 64 KiB of a message.)
        let stage = format!("testing {}", "é".repeat(400));
        assert!(f.store.record_progress(claimed.id, "w", 10.0, &stage, now()).await.unwrap());
        let stored = f.store.job(claimed.id, ada).await.unwrap().unwrap();
        let kept = stored.stage.unwrap();
        assert_eq!(kept.chars().count(), 255);
        assert!(kept.starts_with("testing éé") && kept.ends_with('…'), "{kept}");
        let message = "column \"ß\" has 3 new nulls; ".repeat(5_000);
        let failed = JobOutcome {
            status: JobStatus::Failed,
            error: Some(JobError { code: "INTEGRITY_CHECK_FAILED".into(), message: message.clone() }),
            report: None,
            output_dataset_id: None,
        };
        assert!(f.store.finish_job(claimed.id, "w", &failed, now()).await.unwrap());
        let ended = f.store.job(claimed.id, ada).await.unwrap().unwrap();
        let error = ended.error.unwrap();
        assert_eq!(error.code, "INTEGRITY_CHECK_FAILED");
        assert_eq!(error.message.chars().count(), 8_000);
        let cut: String = message.chars().take(7_999).collect();
        assert_eq!(error.message, format!("{cut}…"));
    }

    async fn queued_jobs_cancel_at_once_and_released_jobs_return_to_the_queue(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let (bob, _) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let waiting = job(ada, &data);
        f.store.insert_job(&waiting).await.unwrap();
        assert_eq!(f.store.cancel_job(waiting.id, bob, now()).await.unwrap(), None, "not bob's");
        let cancelled = f.store.cancel_job(waiting.id, ada, now()).await.unwrap().unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        assert_eq!(f.store.claim_job("w", now(), now() + Duration::seconds(30), 3).await.unwrap(), None);

        let next = job(ada, &data);
        f.store.insert_job(&next).await.unwrap();
        let claimed = f.store.claim_job("w", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        // One asked to cancel is not put back: its worker records it cancelled.
        let asked = f.store.cancel_job(claimed.id, ada, now()).await.unwrap().unwrap();
        assert!(asked.cancel_requested);
        assert!(!f.store.release_job(claimed.id, "w", now()).await.unwrap());
        assert_eq!(f.store.job(claimed.id, ada).await.unwrap().unwrap().status, JobStatus::Running);
        let cancelled = JobOutcome { status: JobStatus::Cancelled, error: None, report: None, output_dataset_id: None };
        assert!(f.store.finish_job(claimed.id, "w", &cancelled, now()).await.unwrap());

        let next = job(ada, &data);
        f.store.insert_job(&next).await.unwrap();
        let claimed = f.store.claim_job("w", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        assert!(f.store.release_job(claimed.id, "w", now()).await.unwrap());
        let again = f.store.claim_job("v", now(), now() + Duration::seconds(30), 3).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (next.id, 1), "a release does not count as an attempt");
        let failed = JobOutcome {
            status: JobStatus::Failed,
            error: Some(JobError { code: "OUT_OF_MEMORY".into(), message: "too big".into() }),
            report: None,
            output_dataset_id: None,
        };
        assert!(f.store.finish_job(again.id, "v", &failed, now()).await.unwrap());
        let ended = f.store.job(again.id, ada).await.unwrap().unwrap();
        assert_eq!(ended.error, failed.error);
        // Deleting the dataset deletes its jobs' history with it.
        assert!(f.store.delete_dataset(data.id, ada, &[data.id]).await.unwrap());
        assert_eq!(f.store.job(again.id, ada).await.unwrap(), None);
    }

    async fn conversations_are_owner_scoped_and_paged_newest_first(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let (bob, bobs_data) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let run = job(ada, &data);
        f.store.insert_job(&run).await.unwrap();
        let first = conversation(ada, Some(&data), None, "Which columns have missing values?");
        let second = conversation(ada, Some(&data), Some(&run), "Why is the readiness rating low?");
        let third = conversation(ada, None, None, "Érdekes — “quotes” and 'apostrophes'");
        for c in [&first, &second, &third] {
            f.store.insert_conversation(c).await.unwrap();
        }
        f.store.insert_conversation(&conversation(bob, Some(&bobs_data), None, "bob's")).await.unwrap();

        assert_eq!(f.store.conversation(second.id, ada).await.unwrap(), Some(second.clone()));
        assert_eq!(f.second.conversation(third.id, ada).await.unwrap(), Some(third.clone()), "visible to another instance");
        assert_eq!(f.store.conversation(second.id, bob).await.unwrap(), None, "another owner sees nothing");
        assert_eq!(f.store.conversation(ConversationId::generate(), ada).await.unwrap(), None);

        let page = f.store.list_conversations(ada, &PageRequest { first: 2, after: None }).await.unwrap();
        assert_eq!((page.total_count, page.has_next_page), (3, true));
        assert_eq!(page.items, vec![third.clone(), second.clone()], "newest first");
        let rest = f.store.list_conversations(ada, &PageRequest { first: 2, after: Some(second.id.0) }).await.unwrap();
        assert_eq!((rest.total_count, rest.has_next_page), (3, false));
        assert_eq!(rest.items, vec![first.clone()]);
        let bobs = f.store.list_conversations(bob, &PageRequest { first: 10, after: None }).await.unwrap();
        assert_eq!(bobs.total_count, 1);
        assert!(bobs.items.iter().all(|c| c.owner == bob));
        let nobody = f.store.list_conversations(UserId::generate(), &PageRequest { first: 10, after: None }).await.unwrap();
        assert_eq!((nobody.total_count, nobody.items.len(), nobody.has_next_page), (0, 0, false));
    }

    async fn messages_are_numbered_across_appends_and_only_the_owner_appends(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let bob = f.store.create_user(&new_user("bob@example.com")).await.unwrap().id;
        let talk = conversation(ada, Some(&data), None, "Is region ever empty?");
        f.store.insert_conversation(&talk).await.unwrap();
        assert!(f.store.conversation_messages(talk.id, ada, 10).await.unwrap().is_empty());

        let answer = NewMessage {
            role: MessageRole::Assistant,
            content: "No: region has 0 missing values of 10 rows.\nÜbrigens — “quoted” text, 'too', and emoji 📊.".into(),
            sources: vec![
                "profile.columns.region.null_count = 0".into(),
                "SELECT count(*) FROM data WHERE \"region\" IS NULL → [[0]]".into(),
                String::new(),
            ],
            model: Some("gpt-test-2025".into()),
        };
        let asked = now();
        assert!(f.store.append_messages(talk.id, ada, &[message(MessageRole::User, "Is region ever empty?"), answer.clone()], asked).await.unwrap());
        let later = asked + Duration::seconds(5);
        let more = [
            message(MessageRole::User, "And amount?"),
            message(MessageRole::Assistant, "amount has 1 missing value."),
            message(MessageRole::User, "Thanks"),
        ];
        assert!(f.second.append_messages(talk.id, ada, &more, later).await.unwrap(), "another instance continues the numbering");

        let all = f.store.conversation_messages(talk.id, ada, 100).await.unwrap();
        assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert!(all.iter().all(|m| m.conversation == talk.id));
        assert_eq!(all[0].role, MessageRole::User);
        assert_eq!(all[0].model, None);
        assert!(all[0].sources.is_empty());
        assert_eq!((all[1].role, &all[1].content, &all[1].sources, &all[1].model), (answer.role, &answer.content, &answer.sources, &answer.model), "sources round-trip");
        assert_eq!((all[0].created_at, all[4].created_at), (asked, later));
        assert_eq!(all[4].content, "Thanks");

        // The last N, still oldest first.
        let last_two = f.store.conversation_messages(talk.id, ada, 2).await.unwrap();
        assert_eq!(last_two.iter().map(|m| (m.seq, m.content.as_str())).collect::<Vec<_>>(), vec![(4, "amount has 1 missing value."), (5, "Thanks")]);
        assert!(f.store.conversation_messages(talk.id, ada, 0).await.unwrap().is_empty());
        assert_eq!(f.store.conversation(talk.id, ada).await.unwrap().unwrap().updated_at, later, "an append touches the conversation");

        // Another user can neither read nor append; a missing conversation takes nothing.
        assert!(f.store.conversation_messages(talk.id, bob, 100).await.unwrap().is_empty());
        assert!(!f.store.append_messages(talk.id, bob, &[message(MessageRole::User, "mine now")], later).await.unwrap());
        assert!(!f.store.append_messages(ConversationId::generate(), ada, &[message(MessageRole::User, "lost")], later).await.unwrap());
        assert_eq!(f.store.conversation_messages(talk.id, ada, 100).await.unwrap().len(), 5, "nothing written");
        assert_eq!(f.store.conversation(talk.id, ada).await.unwrap().unwrap().updated_at, later, "not touched by bob");
    }

    async fn concurrent_appends_never_share_a_number(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let talk = conversation(ada, Some(&data), None, "busy");
        f.store.insert_conversation(&talk).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = if i % 2 == 0 { f.store.clone() } else { f.second.clone() };
            let id = talk.id;
            tasks.push(tokio::spawn(async move {
                let pair = [message(MessageRole::User, &format!("q{i}")), message(MessageRole::Assistant, &format!("a{i}"))];
                store.append_messages(id, ada, &pair, now()).await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        let all = f.store.conversation_messages(talk.id, ada, 1000).await.unwrap();
        assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=24).collect::<Vec<u32>>());
        // Each append's messages are consecutive: question, then its answer.
        for pair in all.chunks(2) {
            assert_eq!(pair[0].content.replacen('q', "a", 1), pair[1].content, "{all:?}");
        }
    }

    async fn llm_usage_is_summed_per_owner_and_per_job(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let (bob, _) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let run = job(ada, &data);
        f.store.insert_job(&run).await.unwrap();
        let other_run = job(ada, &data);
        f.store.insert_job(&other_run).await.unwrap();
        let talk = conversation(ada, Some(&data), None, "costs");
        f.store.insert_conversation(&talk).await.unwrap();

        assert_eq!(f.store.llm_usage_totals(ada, None).await.unwrap(), UsageTotals::default(), "none yet");
        f.store.record_llm_usage(&usage(ada, Some(run.id), None, 1200, 300)).await.unwrap();
        f.second.record_llm_usage(&usage(ada, Some(run.id), None, 5_000_000_000, 7)).await.unwrap();
        f.store.record_llm_usage(&usage(ada, Some(other_run.id), None, 10, 1)).await.unwrap();
        f.store.record_llm_usage(&usage(ada, None, Some(talk.id), 800, 150)).await.unwrap();
        f.store.record_llm_usage(&usage(bob, None, None, 99, 99)).await.unwrap();

        let all = UsageTotals { requests: 4, prompt_tokens: 5_000_002_010, completion_tokens: 458 };
        assert_eq!(f.store.llm_usage_totals(ada, None).await.unwrap(), all);
        assert_eq!(
            f.store.llm_usage_totals(ada, Some(run.id)).await.unwrap(),
            UsageTotals { requests: 2, prompt_tokens: 5_000_001_200, completion_tokens: 307 }
        );
        assert_eq!(f.store.llm_usage_totals(bob, None).await.unwrap(), UsageTotals { requests: 1, prompt_tokens: 99, completion_tokens: 99 });
        assert_eq!(f.store.llm_usage_totals(bob, Some(run.id)).await.unwrap(), UsageTotals::default(), "not bob's job");
        assert_eq!(f.store.llm_usage_totals(ada, Some(JobId::generate())).await.unwrap(), UsageTotals::default());

        // Accounting outlives the dataset, its jobs and its conversations.
        assert!(f.store.delete_dataset(data.id, ada, &[data.id]).await.unwrap());
        assert_eq!(f.store.job(run.id, ada).await.unwrap(), None);
        assert_eq!(f.store.llm_usage_totals(ada, None).await.unwrap(), all);
        assert_eq!(f.store.llm_usage_totals(ada, Some(run.id)).await.unwrap().requests, 2);
    }

    async fn a_deleted_baseline_leaves_the_other_datasets_jobs(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let baseline = dataset(ada, None);
        f.store.insert_dataset(&baseline).await.unwrap();
        let mut compared = job(ada, &data);
        compared.baseline_dataset_id = Some(baseline.id);
        f.store.insert_job(&compared).await.unwrap();
        let of_baseline = job(ada, &baseline);
        f.store.insert_job(&of_baseline).await.unwrap();
        // Bob's job is never touched by Ada's delete.
        let (bob, bobs) = owner_with_dataset(&*f.store, "bob@example.com").await;
        let bobs_job = job(bob, &bobs);
        f.store.insert_job(&bobs_job).await.unwrap();

        assert!(f.store.delete_dataset(baseline.id, ada, &[baseline.id]).await.unwrap());
        let kept = f.store.job(compared.id, ada).await.unwrap().expect("the compared dataset's job stays");
        assert_eq!(kept.baseline_dataset_id, None);
        assert_eq!(f.store.job(of_baseline.id, ada).await.unwrap(), None, "the baseline's own job goes");
        assert!(f.store.job(bobs_job.id, bob).await.unwrap().is_some());
    }

    async fn conversations_go_with_the_dataset_or_job_they_are_about(f) {
        let (ada, data) = owner_with_dataset(&*f.store, "ada@example.com").await;
        let other = dataset(ada, None);
        f.store.insert_dataset(&other).await.unwrap();
        let run = job(ada, &other);
        f.store.insert_job(&run).await.unwrap();
        let about_data = conversation(ada, Some(&data), None, "about the data");
        let about_job = conversation(ada, None, Some(&run), "about the report");
        let unattached = conversation(ada, None, None, "general");
        for c in [&about_data, &about_job, &unattached] {
            f.store.insert_conversation(c).await.unwrap();
            assert!(f.store.append_messages(c.id, ada, &[message(MessageRole::User, "hello")], now()).await.unwrap());
        }

        assert!(f.store.delete_dataset(data.id, ada, &[data.id]).await.unwrap());
        assert_eq!(f.store.conversation(about_data.id, ada).await.unwrap(), None);
        assert!(f.store.conversation_messages(about_data.id, ada, 10).await.unwrap().is_empty(), "messages go too");
        assert!(!f.store.append_messages(about_data.id, ada, &[message(MessageRole::User, "still there?")], now()).await.unwrap());

        // Deleting a dataset deletes its jobs, and with them the conversations about them.
        assert!(f.store.delete_dataset(other.id, ada, &[other.id]).await.unwrap());
        assert_eq!(f.store.conversation(about_job.id, ada).await.unwrap(), None);
        assert!(f.store.conversation_messages(about_job.id, ada, 10).await.unwrap().is_empty());

        let left = f.store.list_conversations(ada, &PageRequest { first: 10, after: None }).await.unwrap();
        assert_eq!((left.total_count, left.items.iter().map(|c| c.id).collect::<Vec<_>>()), (1, vec![unattached.id]));
        assert_eq!(f.store.conversation_messages(unattached.id, ada, 10).await.unwrap().len(), 1);
    }
}
