//! B10: `Authorize` over gRPC with a warm decision cache (p99 ≤ 5 ms and ≥ 10,000 decisions/s
//! on 2 cores), with the cold path and `AuthorizeBatch` alongside for context.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench authorize`.
//! (Uses `target/release/brokerd` beside the bench executable, or `BROKERD_BIN`.)
//!
//! Setup goes through the real APIs only: an owner client of Digdir registered with the admin
//! HTTP API gets a real token from `POST /token`; over the access registry's gRPC the admin
//! registers Digdir as a service owner, and Digdir creates `bench-resource` (access lists
//! Enabled), a policy letting `any-organization` `read`, the list `bench-readers` connected to
//! the resource without action filters, and `BENCH_MEMBERS` (default 150,000) member
//! organisations, 1,000 per `ChangeMembers` (enough that every cold level lasts its ~3 s).
//!
//! Workloads, each at concurrency 1, 8, 32 and 64 for ~3 s (`BENCH_LEVEL_SECONDS`):
//! - warm: the same 100 questions (member org acting for itself, `read`, `bench-resource`)
//!   cycled after one warm-up pass, so every answer comes from the decision cache;
//! - cold: every question distinct (a member never asked about before), so every answer is a
//!   cache miss that reads the database; the levels take members in turn from one pool and a
//!   level ends early if the pool runs out (the printed rate stays correct);
//! - batch: `AuthorizeBatch` of the 100 warm questions (latencies are per call).
//!
//! Channels: one HTTP/2 connection (tonic `Channel`) per 8 concurrent tasks, as a caller that
//! keeps a small pool of multiplexed connections to the registry would; the same channels are
//! reused across levels, so connection set-up is never timed.
//!
//! The client runs on the same cores as the broker: the printed CPU shares say how the two
//! split them. Every answer must be a permit; anything else counts as a wrong answer and fails
//! the run after the table is printed. The store is SQLite unless `BROKER_TEST_DATABASE_URL`
//! names a PostgreSQL server (a fresh database is created on it). The latency distributions of
//! the warm level the verdict rests on and of the fastest cold level are recorded for
//! `scripts/bench.sh`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use broker_common::grpc::with_bearer;
use broker_proto::access as pb;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::access::change_members_request::Mode;
use broker_proto::common::Principal;
use broker_tests::bench::{Row, ms, percentile, print_table, record_latencies};
use broker_tests::{Broker, BrokerOptions, DIGDIR, Database, org_numbers};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
const RESOURCE: &str = "bench-resource";
const LIST: &str = "bench-readers";

const DEFAULT_LEVEL_SECONDS: u64 = 3;
const LEVELS: [usize; 4] = [1, 8, 32, 64];
const BATCH_LEVELS: [usize; 2] = [1, 8];
const TASKS_PER_CHANNEL: usize = 8;
const WARM_SET: usize = 100;
const DEFAULT_MEMBERS: usize = 150_000;
/// As many parties as one member change may name (Altinn's limit).
const MAX_PARTIES_PER_CALL: usize = 100;
const MAX_P99_MS: f64 = 5.0;
const MIN_RATE: f64 = 10_000.0;
/// Linux reports process CPU time in these ticks per second (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

fn main() {
    broker_tests::bench::run("authorize", run);
}

/// How long each level runs: `BENCH_LEVEL_SECONDS`, default 3.
fn level_time() -> Duration {
    Duration::from_secs(broker_tests::bench::setting(
        "BENCH_LEVEL_SECONDS",
        DEFAULT_LEVEL_SECONDS,
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Warm,
    Cold,
    Batch,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Warm => "warm",
            Self::Cold => "cold",
            Self::Batch => "batch×100",
        }
    }
}

struct Level {
    workload: Workload,
    concurrency: usize,
    /// Decisions answered (a batch call answers 100).
    decisions: usize,
    /// Answers that were not the expected permit.
    wrong: usize,
    /// Calls that failed outright.
    errors: usize,
    elapsed: Duration,
    /// Per call.
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Per call, sorted.
    latencies: Vec<Duration>,
    /// CPU time over wall time, in cores, of the broker process and of this client.
    broker_cpu: f64,
    client_cpu: f64,
    /// The cold pool ran out before the time was up.
    ran_out: bool,
    /// The index of the first question not asked (cold: where the next level starts).
    cursor: usize,
}

impl Level {
    fn rate(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64()
    }

    fn meets_b10(&self) -> bool {
        ms(self.p99) <= MAX_P99_MS && self.rate() >= MIN_RATE && self.wrong + self.errors == 0
    }
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let members: usize = broker_tests::bench::setting("BENCH_MEMBERS", DEFAULT_MEMBERS)
        .max(WARM_SET + LEVELS.len() * 100);
    println!("B10 Authorize benchmark ({cores} cores)");
    broker_tests::bench::warn_if_busy(cores);

    let database = match std::env::var(broker_tests::database::SERVER_VAR) {
        Ok(url) if !url.is_empty() => Database::postgres()
            .await
            .expect("a fresh PostgreSQL database"),
        _ => Database::Sqlite,
    };
    let store = match &database {
        Database::Sqlite => "SQLite (embedded)",
        Database::Postgres(_) => "PostgreSQL (BROKER_TEST_DATABASE_URL)",
    };
    let broker = Broker::start(BrokerOptions::new().database(database)).await;
    let access_url = broker.listening("access").to_owned();
    println!("store: {store}; access registry at {access_url}");

    // --- setup, through the real APIs ---
    let started = Instant::now();
    let orgs = org_numbers(members);
    let scopes = [RESOURCE_WRITE, LIST_WRITE];
    let owner = broker.register_client(DIGDIR, &scopes).await;
    let mut token = owner.token(&scopes).await;
    let mut token_at = Instant::now();
    let mut registry = broker.access_registry().await;
    setup(&mut registry, broker.admin_token(), &token).await;
    for (index, chunk) in orgs.chunks(MAX_PARTIES_PER_CALL).enumerate() {
        // Tokens are short-lived: take a fresh one now and then while adding members.
        if token_at.elapsed() > Duration::from_secs(30) {
            token = owner.token(&scopes).await;
            token_at = Instant::now();
        }
        let add = pb::ChangeMembersRequest {
            owner: "digdir".into(),
            identifier: LIST.into(),
            mode: Mode::Add.into(),
            parties: chunk.iter().map(|org| urn(org)).collect(),
            ..pb::ChangeMembersRequest::default()
        };
        registry
            .change_members(with_bearer(Request::new(add), &token))
            .await
            .unwrap_or_else(|status| panic!("adding members (call {index}): {status:?}"));
    }
    // The answers the whole run relies on: a member may read, a stranger may not.
    let member = decide(&mut registry, question(&orgs[0])).await;
    assert_eq!(member.reason, "permit", "a member must be permitted");
    let stranger = decide(&mut registry, question(DIGDIR)).await;
    assert_eq!(
        stranger.reason, "not-on-access-list",
        "a non-member must be denied: the access list has to matter"
    );
    println!(
        "setup: service owner, resource, policy, list with {members} members in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The registry hears its own change notices back from the bus (outbox relay, 100 ms
    // polls) and flushes its cache on each: let them all arrive before warming it.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let max_channels = LEVELS.iter().max().unwrap().div_ceil(TASKS_PER_CHANNEL);
    let mut channels = Vec::new();
    for _ in 0..max_channels {
        let channel = Endpoint::from_shared(access_url.clone())
            .expect("the access URL")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connecting to the access registry");
        channels.push(channel);
    }

    // --- questions ---
    let warm: Arc<Vec<pb::AuthorizeRequest>> =
        Arc::new(orgs[..WARM_SET].iter().map(|org| question(org)).collect());
    let cold: Arc<Vec<pb::AuthorizeRequest>> =
        Arc::new(orgs[WARM_SET..].iter().map(|org| question(org)).collect());
    let cold_pool = cold.len();
    // Warm-up: one pass over the warm set on every channel (fills the cache, warms connections).
    for channel in &channels {
        let mut client = AccessRegistryClient::new(channel.clone());
        for q in warm.iter() {
            let decision = decide(&mut client, q.clone()).await;
            assert_eq!(decision.reason, "permit", "warm-up: {}", q.party);
        }
    }

    let pid = broker.pid().expect("the broker runs");
    let mut results = Vec::new();
    for concurrency in LEVELS {
        let level = measure(Workload::Warm, concurrency, &channels, &warm, 0, pid).await;
        progress(&level);
        results.push(level);
    }
    for concurrency in BATCH_LEVELS {
        let level = measure(Workload::Batch, concurrency, &channels, &warm, 0, pid).await;
        progress(&level);
        results.push(level);
    }
    let mut asked = 0;
    for concurrency in LEVELS {
        let level = measure(Workload::Cold, concurrency, &channels, &cold, asked, pid).await;
        asked = level.cursor;
        progress(&level);
        results.push(level);
    }

    // --- report ---
    println!();
    println!(
        "store: {store}; {members} list members; one HTTP/2 channel per {TASKS_PER_CHANNEL} \
         tasks; ~{}s per row; client and broker share {cores} cores",
        level_time().as_secs()
    );
    println!(
        "B10 budget (warm rows): p99 ≤ {MAX_P99_MS} ms and ≥ {MIN_RATE:.0} decisions/s; \
         batch latencies are per call of {WARM_SET}"
    );
    println!(
        "{:<10} {:>11} {:>12} {:>8} {:>8} {:>8} {:>6} {:>10} {:>10}  B10",
        "workload",
        "concurrency",
        "decisions/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "wrong",
        "broker cpu",
        "client cpu"
    );
    for level in &results {
        let verdict = match level.workload {
            Workload::Warm if level.meets_b10() => "met",
            Workload::Warm => "missed",
            _ => "-",
        };
        let note = if level.ran_out {
            format!(
                "  (pool of {cold_pool} ran out after {:.1} s)",
                level.elapsed.as_secs_f64()
            )
        } else {
            String::new()
        };
        println!(
            "{:<10} {:>11} {:>12.0} {:>8.3} {:>8.3} {:>8.2} {:>6} {:>10.2} {:>10.2}  {verdict}{note}",
            level.workload.name(),
            level.concurrency,
            level.rate(),
            ms(level.p50),
            ms(level.p99),
            ms(level.max),
            level.wrong + level.errors,
            level.broker_cpu,
            level.client_cpu,
        );
    }
    println!();
    for level in results.iter().filter(|l| l.workload == Workload::Warm) {
        println!(
            "B10 warm, concurrency {:>2}: {} — p99 {:.3} ms ({} {MAX_P99_MS} ms), {:.0} decisions/s ({} {MIN_RATE:.0})",
            level.concurrency,
            if level.meets_b10() { "met" } else { "missed" },
            ms(level.p99),
            if ms(level.p99) <= MAX_P99_MS {
                "≤"
            } else {
                ">"
            },
            level.rate(),
            if level.rate() >= MIN_RATE { "≥" } else { "<" },
        );
    }
    let warm_levels: Vec<_> = results
        .iter()
        .filter(|l| l.workload == Workload::Warm)
        .collect();
    let best_met = warm_levels
        .iter()
        .filter(|l| l.meets_b10())
        .max_by(|a, b| a.rate().total_cmp(&b.rate()));
    match best_met {
        Some(best) => println!(
            "B10: MET — best at concurrency {}: {:.0} decisions/s, p99 {:.3} ms",
            best.concurrency,
            best.rate(),
            ms(best.p99)
        ),
        None => {
            let fastest = warm_levels
                .iter()
                .max_by(|a, b| a.rate().total_cmp(&b.rate()))
                .expect("warm levels");
            println!(
                "B10: NOT MET at any concurrency — peak {:.0} decisions/s at concurrency {} \
                 (p99 {:.3} ms); needs ≥ {MIN_RATE:.0}/s with p99 ≤ {MAX_P99_MS} ms",
                fastest.rate(),
                fastest.concurrency,
                ms(fastest.p99)
            );
        }
    }
    // The verdict's level: the best that met B10, else the fastest.
    let chosen = best_met.copied().unwrap_or_else(|| {
        warm_levels
            .iter()
            .max_by(|a, b| a.rate().total_cmp(&b.rate()))
            .copied()
            .expect("warm levels")
    });
    let cold_best = results
        .iter()
        .filter(|l| l.workload == Workload::Cold)
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .expect("cold levels");
    let plot = "B10 Authorize latency";
    record_latencies(
        plot,
        &format!("warm, concurrency {}", chosen.concurrency),
        &chosen.latencies,
    );
    record_latencies(
        plot,
        &format!("cold, concurrency {}", cold_best.concurrency),
        &cold_best.latencies,
    );
    print_table(&[
        Row {
            budget: "B10",
            what: "warm Authorize decisions/s (best level)".to_owned(),
            ours: format!("{:.0}/s", chosen.rate()),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("≥ {MIN_RATE:.0}/s"),
            meets: Some(chosen.rate() >= MIN_RATE && chosen.wrong + chosen.errors == 0),
        },
        Row {
            budget: "B10",
            what: "warm Authorize p99 at that level".to_owned(),
            ours: format!("{:.3} ms", ms(chosen.p99)),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("≤ {MAX_P99_MS} ms"),
            meets: Some(ms(chosen.p99) <= MAX_P99_MS),
        },
        Row {
            budget: "B10",
            what: "cold Authorize decisions/s (best level)".to_owned(),
            ours: format!("{:.0}/s", cold_best.rate()),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "reported".to_owned(),
            meets: None,
        },
    ]);
    let wrong: usize = results.iter().map(|l| l.wrong).sum();
    let errors: usize = results.iter().map(|l| l.errors).sum();
    let answered: usize = results.iter().map(|l| l.decisions).sum();
    println!("answers checked: {answered}; wrong answers: {wrong}; failed calls: {errors}");
    assert_eq!(wrong, 0, "every answer must be a permit");
    assert_eq!(errors, 0, "no call may fail");
}

/// Service owner (admin), resource, policy, access list and its connection (owner's token).
async fn setup(registry: &mut AccessRegistryClient<Channel>, admin: &str, token: &str) {
    let owner = pb::CreateServiceOwnerRequest {
        owner: Some(pb::ServiceOwner {
            org_number: DIGDIR.into(),
            org_code: "digdir".into(),
            name: "Digitaliseringsdirektoratet".into(),
        }),
    };
    registry
        .create_service_owner(with_bearer(Request::new(owner), admin))
        .await
        .expect("creating the service owner");
    let texts = serde_json::json!({"nb": "Benk", "nn": "Benk", "en": "Bench"});
    let resource = pb::UpsertResourceRequest {
        document: serde_json::json!({
            "identifier": RESOURCE,
            "title": texts,
            "description": texts,
            "delegable": false,
            "hasCompetentAuthority": {"organization": DIGDIR},
            "resourceType": "BrokerService",
            "accessListMode": "Enabled",
        })
        .to_string(),
        ..pb::UpsertResourceRequest::default()
    };
    registry
        .create_resource(with_bearer(Request::new(resource), token))
        .await
        .expect("creating the resource");
    let policy = pb::PutPolicyRequest {
        policy: Some(pb::Policy {
            resource: RESOURCE.into(),
            rules: vec![pb::PolicyRule {
                subjects: vec!["any-organization".into()],
                actions: vec!["read".into()],
            }],
            ..pb::Policy::default()
        }),
        ..pb::PutPolicyRequest::default()
    };
    registry
        .put_policy(with_bearer(Request::new(policy), token))
        .await
        .expect("writing the policy");
    let list = pb::UpsertAccessListRequest {
        owner: "digdir".into(),
        identifier: LIST.into(),
        name: "Bench readers".into(),
        description: "Members may read bench-resource".into(),
        ..pb::UpsertAccessListRequest::default()
    };
    registry
        .upsert_access_list(with_bearer(Request::new(list), token))
        .await
        .expect("creating the access list");
    let connect = pb::ConnectResourceRequest {
        owner: "digdir".into(),
        identifier: LIST.into(),
        resource_identifier: RESOURCE.into(),
        action_filters: Vec::new(),
        ..pb::ConnectResourceRequest::default()
    };
    registry
        .connect_resource(with_bearer(Request::new(connect), token))
        .await
        .expect("connecting the list to the resource");
}

fn progress(level: &Level) {
    println!(
        "{:<10} concurrency {:>2}: {:>7.0} decisions/s, p99 {:.3} ms",
        level.workload.name(),
        level.concurrency,
        level.rate(),
        ms(level.p99)
    );
}

/// Runs one workload at one concurrency for [`LEVEL_TIME`]. Warm questions are cycled; cold
/// ones are asked once each from index `first` on, and the level ends early when they run out.
async fn measure(
    workload: Workload,
    concurrency: usize,
    channels: &[Channel],
    questions: &Arc<Vec<pb::AuthorizeRequest>>,
    first: usize,
    broker_pid: u32,
) -> Level {
    let used = concurrency.div_ceil(TASKS_PER_CHANNEL).min(channels.len());
    let next = Arc::new(AtomicUsize::new(first));
    let batch = pb::AuthorizeBatchRequest {
        requests: if workload == Workload::Batch {
            questions.to_vec()
        } else {
            Vec::new()
        },
    };
    let level_time = level_time();
    let broker_before = cpu_seconds(&format!("/proc/{broker_pid}/stat"));
    let client_before = cpu_seconds("/proc/self/stat");
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|task| {
            let mut client = AccessRegistryClient::new(channels[task % used].clone());
            let (questions, next, batch) = (questions.clone(), next.clone(), batch.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut decisions, mut wrong, mut errors, mut ran_out) = (0, 0, 0, false);
                let mut first_problem = None;
                while started.elapsed() < level_time {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let answers = match workload {
                        Workload::Warm => {
                            let q = questions[index % questions.len()].clone();
                            client.authorize(q).await.map(|r| vec![r.into_inner()])
                        }
                        Workload::Cold => {
                            let Some(q) = questions.get(index) else {
                                ran_out = true;
                                break;
                            };
                            client
                                .authorize(q.clone())
                                .await
                                .map(|r| vec![r.into_inner()])
                        }
                        Workload::Batch => client
                            .authorize_batch(batch.clone())
                            .await
                            .map(|r| r.into_inner().decisions),
                    };
                    let latency = sent.elapsed();
                    match answers {
                        Ok(answers) => {
                            latencies.push(latency);
                            let expected = if workload == Workload::Batch {
                                questions.len()
                            } else {
                                1
                            };
                            if answers.len() != expected {
                                wrong += expected;
                                first_problem.get_or_insert(format!(
                                    "{} answers to {expected} questions",
                                    answers.len()
                                ));
                            }
                            for answer in &answers {
                                decisions += 1;
                                if !(answer.permit && answer.reason == "permit") {
                                    wrong += 1;
                                    first_problem.get_or_insert(format!("{answer:?}"));
                                }
                            }
                        }
                        Err(status) => {
                            errors += 1;
                            first_problem.get_or_insert(format!("{status:?}"));
                        }
                    }
                }
                (latencies, decisions, wrong, errors, ran_out, first_problem)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut decisions, mut wrong, mut errors, mut ran_out) = (0, 0, 0, false);
    let mut problems = Vec::new();
    for worker in workers {
        let (l, d, w, e, r, p) = worker.await.expect("worker");
        latencies.extend(l);
        decisions += d;
        wrong += w;
        errors += e;
        ran_out |= r;
        problems.extend(p);
    }
    let elapsed = started.elapsed();
    let broker_cpu = cpu_seconds(&format!("/proc/{broker_pid}/stat")) - broker_before;
    let client_cpu = cpu_seconds("/proc/self/stat") - client_before;
    if let Some(first) = problems.first() {
        eprintln!(
            "{} concurrency {concurrency}: {wrong} wrong answers, {errors} failed calls; first: {first}",
            workload.name()
        );
    }
    latencies.sort();
    Level {
        workload,
        concurrency,
        decisions,
        wrong,
        errors,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        latencies,
        broker_cpu: broker_cpu / elapsed.as_secs_f64(),
        client_cpu: client_cpu / elapsed.as_secs_f64(),
        ran_out,
        cursor: next.load(Ordering::Relaxed).min(questions.len()),
    }
}

async fn decide(
    registry: &mut AccessRegistryClient<Channel>,
    question: pb::AuthorizeRequest,
) -> pb::Decision {
    registry
        .authorize(question)
        .await
        .unwrap_or_else(|status| panic!("Authorize failed: {status:?}"))
        .into_inner()
}

/// `org` acting for itself asks to read the bench resource.
fn question(org: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        principal: Some(Principal {
            org_number: org.to_owned(),
            ..Principal::default()
        }),
        action: "read".to_owned(),
        resource: RESOURCE.to_owned(),
        party: urn(org),
        instance: String::new(),
    }
}

fn urn(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

/// User plus system CPU time of the process whose `/proc/<pid>/stat` this is, in seconds.
fn cpu_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // state (3), ..., utime (14), stime (15).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}
