//! The lifecycle jobs with the clock moved forward, on SQLite and PostgreSQL: each purge rule,
//! stuck uploads and processing, the byte sweep, and two job runners on one database purging
//! each transfer once.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_common::clock::Clock;
use broker_common::identity::OrgNumber;
use broker_common::transfer_event::{TransferEvent, TransferEventKind};
use broker_filetransfer::config::LifecycleSettings;
use broker_filetransfer::domain::event::Happening;
use broker_filetransfer::domain::settings::ResourceSettings;
use broker_filetransfer::domain::status::{RecipientStatus, TransferStatus};
use broker_filetransfer::domain::transfer::NewTransfer;
use broker_filetransfer::jobs::{Lifecycle, Report};
use broker_filetransfer::storage::Storage;
use broker_filetransfer::store::{
    FileTransferStore, LeaseChange, PostgresFileTransferStore, RecipientTransitioned,
    SqliteFileTransferStore, TransitionUpdate, Transitioned, UploadLease,
};
use broker_tests::database::{self, TestDatabase};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

const SENDER: &str = "991825827";
const FIRST: &str = "974760673";
const SECOND: &str = "910753614";

fn org(text: &str) -> OrgNumber {
    OrgNumber::parse(text).unwrap()
}

/// A clock the test moves.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A store, local storage and the jobs over them, at a fixed start time.
struct World {
    store: Arc<dyn FileTransferStore>,
    storage: Storage,
    clock: Arc<TestClock>,
    jobs: Lifecycle,
    dir: PathBuf,
    _db: Option<TestDatabase>,
}

/// Which database a test runs on.
#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

fn settings() -> LifecycleSettings {
    LifecycleSettings {
        interval: Duration::from_secs(30),
        stuck_upload_after: TimeDelta::hours(24),
        stuck_processing_after: TimeDelta::hours(1),
        upload_lease: TimeDelta::seconds(30),
    }
}

impl World {
    /// `None` when PostgreSQL tests skip (outside CI without a server).
    async fn new(db: Db) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("broker-lifecycle-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (store, test_db): (Arc<dyn FileTransferStore>, _) = match db {
            Db::Sqlite => (
                Arc::new(
                    SqliteFileTransferStore::open(&dir.join("filetransfer.db"))
                        .await
                        .unwrap(),
                ),
                None,
            ),
            Db::Postgres => {
                let test_db = database::postgres().await?;
                let store = PostgresFileTransferStore::connect(test_db.url())
                    .await
                    .unwrap();
                (Arc::new(store), Some(test_db))
            }
        };
        let storage = Storage::open(None, &dir.join("files"), 5 * 1024 * 1024).unwrap();
        let start = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let clock = Arc::new(TestClock(Mutex::new(start)));
        let jobs = Lifecycle::new(store.clone(), storage.clone(), clock.clone(), settings());
        Some(Self {
            store,
            storage,
            clock,
            jobs,
            dir,
            _db: test_db,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A resource with this time to live and purge rule.
    async fn given_resource(&self, id: &str, ttl: TimeDelta, purge: bool, grace: TimeDelta) {
        let mut settings = ResourceSettings::defaults(id, org(SENDER));
        settings.file_transfer_time_to_live = ttl;
        settings.purge_after_all_confirmed = purge;
        settings.purge_grace_period = grace;
        self.store
            .put_resource_settings(&settings, self.now())
            .await
            .unwrap();
    }

    /// A transfer created now and moved to `status` with bytes stored for it (none in
    /// Initialized).
    async fn given_transfer(&self, resource: &str, ttl: TimeDelta, status: TransferStatus) -> Uuid {
        let now = self.now();
        let new = NewTransfer {
            id: Uuid::now_v7(),
            resource_id: resource.to_owned(),
            file_name: "report.pdf".to_owned(),
            senders_reference: None,
            sender: org(SENDER),
            sender_party: format!("0192:{SENDER}"),
            recipients: vec![org(FIRST), org(SECOND)],
            property_list: BTreeMap::new(),
            checksum: None,
            use_virus_scan: false,
            created: now,
            expires: now + ttl,
            vendor: None,
        };
        let event = Happening::Initialized.event(&new.initialized(), now);
        self.store.create(&new, &[event]).await.unwrap();
        use TransferStatus::*;
        let path: &[TransferStatus] = match status {
            Initialized => &[],
            UploadStarted => &[UploadStarted],
            UploadProcessing => &[UploadStarted, UploadProcessing],
            Published => &[UploadStarted, UploadProcessing, Published],
            other => panic!("not a starting status: {other}"),
        };
        let mut current = Initialized;
        for &next in path {
            if next == UploadStarted {
                let chunk: Result<Bytes, std::io::Error> = Ok(Bytes::from_static(b"file bytes"));
                self.storage
                    .write(new.id, futures::stream::iter([chunk]), 1024)
                    .await
                    .unwrap();
            }
            let update = TransitionUpdate {
                published: (next == Published).then_some(now),
                ..TransitionUpdate::default()
            };
            let moved = self
                .store
                .transition(new.id, &[current], next, now, &update, &[])
                .await
                .unwrap();
            assert!(matches!(moved, Transitioned::Applied(_)), "{moved:?}");
            current = next;
        }
        new.id
    }

    /// `recipient` downloads and confirms now; the last one makes it AllConfirmedDownloaded.
    async fn confirm(&self, id: Uuid, recipient: &str) {
        let now = self.now();
        for (from, to) in [
            (
                RecipientStatus::Initialized,
                RecipientStatus::DownloadStarted,
            ),
            (
                RecipientStatus::DownloadStarted,
                RecipientStatus::DownloadConfirmed,
            ),
        ] {
            let moved = self
                .store
                .set_recipient_status(id, org(recipient), &[from], to, now, None, &[])
                .await
                .unwrap();
            if let RecipientTransitioned::Applied {
                all_confirmed: true,
            } = moved
            {
                self.store
                    .transition(
                        id,
                        &[TransferStatus::Published],
                        TransferStatus::AllConfirmedDownloaded,
                        now,
                        &TransitionUpdate::default(),
                        &[],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    async fn status(&self, id: Uuid) -> TransferStatus {
        self.store.get(id).await.unwrap().unwrap().status
    }

    fn has_bytes(&self, id: Uuid) -> bool {
        self.dir.join("files").join(id.to_string()).exists()
    }

    /// A transfer of `resource` in UploadStarted whose upload `holder` leases for `lease`, with
    /// half an upload in its staging file; its id and that file.
    async fn given_upload_under_way(
        &self,
        resource: &str,
        ttl: TimeDelta,
        holder: &str,
        lease: TimeDelta,
    ) -> (Uuid, PathBuf) {
        let id = self
            .given_transfer(resource, ttl, TransferStatus::Initialized)
            .await;
        let staging = self.storage.stage(id).await.unwrap();
        let file = self.dir.join("files").join(&staging.key);
        std::fs::write(&file, b"half an upload").unwrap();
        let update = TransitionUpdate {
            lease: Some(LeaseChange::Grant(UploadLease {
                holder: holder.to_owned(),
                expires: self.now() + lease,
                staging,
            })),
            ..TransitionUpdate::default()
        };
        let started = self
            .store
            .transition(
                id,
                &[TransferStatus::Initialized],
                TransferStatus::UploadStarted,
                self.now(),
                &update,
                &[],
            )
            .await
            .unwrap();
        assert!(matches!(started, Transitioned::Applied(_)), "{started:?}");
        (id, file)
    }

    /// One round of the jobs after moving the clock by `by`.
    async fn after(&self, by: TimeDelta) -> Report {
        self.clock.advance(by);
        self.jobs.run_once().await.unwrap()
    }

    /// The events written since the last call.
    async fn events(&self) -> Vec<TransferEvent> {
        let far = Utc::now() + TimeDelta::days(3650);
        let claimed = self
            .store
            .claim_unpublished_outbox(100_000, far)
            .await
            .unwrap();
        let ids: Vec<String> = claimed.iter().map(|r| r.id.clone()).collect();
        self.store.mark_outbox_published(&ids, far).await.unwrap();
        claimed
            .iter()
            .map(|row| serde_json::from_str(&row.payload).unwrap())
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kinds(events: &[TransferEvent]) -> Vec<TransferEventKind> {
    events.iter().map(|e| e.kind).collect()
}

fn parties(event: &TransferEvent) -> Vec<&str> {
    event
        .parties
        .iter()
        .map(|p| p.org_number.as_str())
        .collect()
}

/// Runs `$test(world)` as `$test::sqlite` and `$test::postgres`.
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let world = super::World::new(super::Db::Sqlite).await.unwrap();
                super::$test(world).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(world) = super::World::new(super::Db::Postgres).await {
                    super::$test(world).await;
                }
            }
        }
    )*};
}

on_both!(
    an_expired_transfer_is_purged_once_and_tells_who_never_confirmed,
    a_fully_confirmed_transfer_is_purged_after_the_grace_period,
    without_the_purge_setting_only_the_time_to_live_purges,
    stuck_uploads_and_processing_fail_and_lose_their_bytes,
    the_sweep_deletes_bytes_left_behind,
    two_job_runners_purge_each_transfer_once,
    an_upload_whose_lease_lapsed_fails_and_loses_its_staging,
    an_upload_failed_by_its_holder_loses_its_staging_by_the_job,
);

async fn an_expired_transfer_is_purged_once_and_tells_who_never_confirmed(world: World) {
    let ttl = TimeDelta::days(1);
    world
        .given_resource("expiring", ttl, true, TimeDelta::hours(2))
        .await;
    let id = world
        .given_transfer("expiring", ttl, TransferStatus::Published)
        .await;
    let never_uploaded = world
        .given_transfer("expiring", ttl, TransferStatus::Initialized)
        .await;
    world.confirm(id, FIRST).await;
    world.events().await;

    let report = world.after(TimeDelta::hours(23)).await;
    assert_eq!(report.purged, 0);
    assert_eq!(world.status(id).await, TransferStatus::Published);
    assert!(world.has_bytes(id));

    let report = world.after(TimeDelta::hours(1)).await;
    assert_eq!(report.purged, 2, "due exactly at their expiry time");
    assert_eq!(world.status(id).await, TransferStatus::Purged);
    assert!(!world.has_bytes(id), "the bytes are gone");
    let transfer = world.store.get(id).await.unwrap().unwrap();
    assert_eq!(transfer.file_name, "report.pdf", "the metadata stays");
    // The transfer that never got a file is over too; it had nothing to confirm.
    let (never, events): (Vec<_>, Vec<_>) = world
        .events()
        .await
        .into_iter()
        .partition(|event| event.file_transfer_id == never_uploaded);
    assert_eq!(kinds(&never), [TransferEventKind::FilePurged]);
    assert_eq!(world.status(never_uploaded).await, TransferStatus::Purged);
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::FilePurged,
            TransferEventKind::FileNeverConfirmedDownloaded
        ]
    );
    assert_eq!(parties(&events[0]), [SENDER]);
    assert_eq!(parties(&events[1]), [SENDER, SECOND]);
    assert!(events.iter().all(|e| e.file_transfer_id == id));
    let history = world.store.history(id).await.unwrap();
    assert_eq!(
        history.transfer.last().unwrap().status,
        TransferStatus::Purged
    );

    // Purging is idempotent: later rounds find nothing and say nothing.
    assert_eq!(world.after(TimeDelta::days(2)).await.purged, 0);
    assert!(world.events().await.is_empty());
}

async fn a_fully_confirmed_transfer_is_purged_after_the_grace_period(world: World) {
    let ttl = TimeDelta::days(30);
    world
        .given_resource("confirmed", ttl, true, TimeDelta::hours(2))
        .await;
    let id = world
        .given_transfer("confirmed", ttl, TransferStatus::Published)
        .await;
    world.after(TimeDelta::hours(1)).await;
    world.confirm(id, FIRST).await;
    world.confirm(id, SECOND).await;
    assert_eq!(
        world.status(id).await,
        TransferStatus::AllConfirmedDownloaded
    );
    world.events().await;

    assert_eq!(world.after(TimeDelta::minutes(119)).await.purged, 0);
    assert!(
        world.has_bytes(id),
        "not before the grace period has passed"
    );
    assert_eq!(world.after(TimeDelta::minutes(1)).await.purged, 1);
    assert_eq!(world.status(id).await, TransferStatus::Purged);
    assert!(!world.has_bytes(id));
    let events = world.events().await;
    assert_eq!(kinds(&events), [TransferEventKind::FilePurged]);
    assert_eq!(parties(&events[0]), [SENDER]);
}

async fn without_the_purge_setting_only_the_time_to_live_purges(world: World) {
    let ttl = TimeDelta::days(3);
    world
        .given_resource("kept", ttl, false, TimeDelta::hours(2))
        .await;
    let id = world
        .given_transfer("kept", ttl, TransferStatus::Published)
        .await;
    world.confirm(id, FIRST).await;
    world.confirm(id, SECOND).await;
    world.events().await;

    assert_eq!(world.after(TimeDelta::hours(25)).await.purged, 0);
    assert_eq!(
        world.status(id).await,
        TransferStatus::AllConfirmedDownloaded
    );
    assert!(world.has_bytes(id));
    assert_eq!(world.after(TimeDelta::days(2)).await.purged, 1);
    assert_eq!(world.status(id).await, TransferStatus::Purged);
    assert!(!world.has_bytes(id));
    // Everybody confirmed: nobody hears "never confirmed".
    assert_eq!(
        kinds(&world.events().await),
        [TransferEventKind::FilePurged]
    );
}

async fn stuck_uploads_and_processing_fail_and_lose_their_bytes(world: World) {
    let ttl = TimeDelta::days(30);
    world
        .given_resource("stuck", ttl, true, TimeDelta::hours(2))
        .await;
    let uploading = world
        .given_transfer("stuck", ttl, TransferStatus::UploadStarted)
        .await;
    let processing = world
        .given_transfer("stuck", ttl, TransferStatus::UploadProcessing)
        .await;
    let published = world
        .given_transfer("stuck", ttl, TransferStatus::Published)
        .await;
    world.events().await;

    assert_eq!(world.after(TimeDelta::minutes(59)).await.failed, 0);
    assert_eq!(world.after(TimeDelta::minutes(2)).await.failed, 1);
    assert_eq!(world.status(processing).await, TransferStatus::Failed);
    assert!(!world.has_bytes(processing));
    assert_eq!(world.status(uploading).await, TransferStatus::UploadStarted);
    assert!(world.has_bytes(uploading));
    let events = world.events().await;
    assert_eq!(kinds(&events), [TransferEventKind::UploadFailed]);
    assert_eq!(events[0].file_transfer_id, processing);
    assert_eq!(parties(&events[0]), [SENDER]);

    assert_eq!(world.after(TimeDelta::hours(23)).await.failed, 1);
    assert_eq!(world.status(uploading).await, TransferStatus::Failed);
    assert!(!world.has_bytes(uploading));
    let history = world.store.history(uploading).await.unwrap();
    let failed = history.transfer.last().unwrap();
    assert_eq!(failed.status, TransferStatus::Failed);
    assert!(failed.detail.as_deref().unwrap().contains("stopped"));
    assert_eq!(
        kinds(&world.events().await),
        [TransferEventKind::UploadFailed]
    );

    assert_eq!(world.status(published).await, TransferStatus::Published);
    assert!(
        world.has_bytes(published),
        "published transfers are not stuck"
    );
    assert_eq!(world.after(TimeDelta::hours(48)).await, Report::default());
}

async fn the_sweep_deletes_bytes_left_behind(world: World) {
    let ttl = TimeDelta::days(30);
    world
        .given_resource("sweep", ttl, true, TimeDelta::hours(2))
        .await;
    // Failed by somebody who died before deleting the bytes.
    let id = world
        .given_transfer("sweep", ttl, TransferStatus::UploadProcessing)
        .await;
    let failed = world
        .store
        .transition(
            id,
            &[TransferStatus::UploadProcessing],
            TransferStatus::Failed,
            world.now(),
            &TransitionUpdate::default(),
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(failed, Transitioned::Applied(_)));
    assert!(world.has_bytes(id));

    assert_eq!(
        world.after(TimeDelta::seconds(1)).await.swept,
        0,
        "whoever failed it gets the first chance"
    );
    assert!(world.has_bytes(id));
    assert_eq!(world.after(TimeDelta::minutes(2)).await.swept, 1);
    assert!(!world.has_bytes(id));
    assert_eq!(world.after(TimeDelta::minutes(2)).await.swept, 0, "once");
}

async fn two_job_runners_purge_each_transfer_once(world: World) {
    const TRANSFERS: usize = 250;
    let ttl = TimeDelta::hours(1);
    world
        .given_resource("many", ttl, true, TimeDelta::hours(2))
        .await;
    let mut ids = Vec::new();
    for _ in 0..TRANSFERS {
        ids.push(
            world
                .given_transfer("many", ttl, TransferStatus::Published)
                .await,
        );
    }
    world.events().await;
    world.clock.advance(TimeDelta::hours(2));
    // A second runner as another replica would have it: its own connection pool on PostgreSQL.
    let other_store: Arc<dyn FileTransferStore> = match world._db.as_ref() {
        Some(db) => Arc::new(PostgresFileTransferStore::connect(db.url()).await.unwrap()),
        None => world.store.clone(),
    };
    let other = Lifecycle::new(
        other_store,
        world.storage.clone(),
        world.clock.clone(),
        settings(),
    );
    let (first, second) = tokio::join!(world.jobs.run_once(), other.run_once());
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.purged + second.purged, TRANSFERS);

    let mut purged_events = HashMap::<Uuid, usize>::new();
    for event in world.events().await {
        if event.kind == TransferEventKind::FilePurged {
            *purged_events.entry(event.file_transfer_id).or_default() += 1;
        }
    }
    assert_eq!(purged_events.len(), TRANSFERS);
    assert!(purged_events.values().all(|&n| n == 1), "each purged once");
    for id in ids {
        assert_eq!(world.status(id).await, TransferStatus::Purged);
        assert!(!world.has_bytes(id));
    }
}

async fn an_upload_whose_lease_lapsed_fails_and_loses_its_staging(world: World) {
    let ttl = TimeDelta::days(30);
    let lease = TimeDelta::seconds(30);
    world
        .given_resource("leased", ttl, true, TimeDelta::hours(2))
        .await;
    // Two uploads under way: one whose process died, one whose process keeps renewing.
    let mut staged = Vec::new();
    for holder in ["dead", "alive"] {
        let (id, file) = world
            .given_upload_under_way("leased", ttl, holder, lease)
            .await;
        staged.push((id, holder, file));
    }
    world.events().await;
    let renew = |id: Uuid, holder: &'static str| {
        let expires = world.now() + lease;
        let store = world.store.clone();
        async move { store.renew_lease(id, holder, expires).await.unwrap() }
    };
    let (dead, _, dead_file) = &staged[0];
    let (alive, _, alive_file) = &staged[1];

    assert_eq!(world.after(TimeDelta::seconds(20)).await.abandoned, 0);
    assert!(renew(*alive, "alive").await);
    assert!(!renew(*alive, "dead").await, "only the holder renews");
    assert_eq!(world.after(TimeDelta::seconds(20)).await.abandoned, 1);
    assert_eq!(world.status(*dead).await, TransferStatus::Failed);
    assert!(
        !dead_file.exists(),
        "the dead upload's staging file is removed"
    );
    let history = world.store.history(*dead).await.unwrap();
    let failed = history.transfer.last().unwrap();
    assert!(failed.detail.as_deref().unwrap().contains("aborted"));
    let events = world.events().await;
    assert_eq!(kinds(&events), [TransferEventKind::UploadFailed]);
    assert_eq!(events[0].file_transfer_id, *dead);
    assert!(
        !renew(*dead, "dead").await,
        "a holder that comes back finds its lease taken"
    );

    assert_eq!(world.status(*alive).await, TransferStatus::UploadStarted);
    assert!(alive_file.exists(), "a renewed lease is never taken");
    let released = TransitionUpdate {
        lease: Some(LeaseChange::Release),
        ..TransitionUpdate::default()
    };
    let done = world
        .store
        .transition(
            *alive,
            &[TransferStatus::UploadStarted],
            TransferStatus::UploadProcessing,
            world.now(),
            &released,
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(done, Transitioned::Applied(_)));
    assert!(!renew(*alive, "alive").await, "released");
    assert_eq!(world.after(TimeDelta::hours(1)).await.abandoned, 0);
    assert!(
        alive_file.exists(),
        "a released lease's staging is left alone"
    );
}

async fn an_upload_failed_by_its_holder_loses_its_staging_by_the_job(world: World) {
    let ttl = TimeDelta::days(30);
    world
        .given_resource("surrendered", ttl, true, TimeDelta::hours(2))
        .await;
    let (id, file) = world
        .given_upload_under_way("surrendered", ttl, "writer", TimeDelta::minutes(5))
        .await;
    // The writer fails the upload, but could not remove its staging (storage away): the file
    // stays, and the failure hands the lease to the job.
    let surrendered = TransitionUpdate {
        lease: Some(LeaseChange::Surrender),
        ..TransitionUpdate::default()
    };
    let failed = world
        .store
        .transition(
            id,
            &[TransferStatus::UploadStarted],
            TransferStatus::Failed,
            world.now(),
            &surrendered,
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(failed, Transitioned::Applied(_)), "{failed:?}");
    assert!(
        !world
            .store
            .renew_lease(id, "writer", world.now())
            .await
            .unwrap(),
        "a surrendered lease is no longer the writer's"
    );
    assert!(file.exists());
    let report = world.after(TimeDelta::seconds(1)).await;
    assert_eq!(report.abandoned, 0, "the transfer had failed already");
    assert!(!file.exists(), "the job removed the staging file");
    assert_eq!(world.status(id).await, TransferStatus::Failed);
}
