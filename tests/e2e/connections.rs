//! The gateway under abuse, from the outside: floods of idle and half-sent connections cost
//! little memory and are let go, one peer cannot take every connection, oversized headers are
//! refused, per-client rate limits answer 429, and two `Authorization` headers are refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use broker_tests::raw_http::{
    closed_by_server, connect_from, gateway_addr, get_from, raise_open_files, rss_bytes, status_of,
};
use broker_tests::{
    AccessList, Broker, BrokerOptions, Database, Scenario, WRITE, on_each_database,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use reqwest::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// `count` connections to `addr`, opened 100 at a time.
async fn open_connections(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    while streams.len() < count {
        let batch = (count - streams.len()).min(100);
        let opened: Vec<_> = (0..batch)
            .map(|_| TcpStream::connect(addr))
            .collect::<FuturesUnordered<_>>()
            .collect()
            .await;
        streams.extend(
            opened
                .into_iter()
                .map(|s| s.expect("connecting to the gateway")),
        );
    }
    streams
}

/// Sends the start of a request header on `stream`, then one more byte of it every 500 ms,
/// never finishing it; returns how long until the server closed the connection.
async fn trickle_header(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: broker\r\nX-Slow: ")
        .await
        .is_err()
    {
        return started.elapsed();
    }
    loop {
        if closed_by_server(&mut stream, Duration::from_millis(500)).await
            || stream.write_all(b"a").await.is_err()
        {
            return started.elapsed();
        }
    }
}

/// Samples `pid`'s resident memory every 100 ms until `until` ends; the highest sample.
async fn peak_rss_while<F: Future>(pid: u32, until: F) -> (u64, F::Output) {
    let mut until = std::pin::pin!(until);
    let mut peak = rss_bytes(pid);
    loop {
        tokio::select! {
            output = &mut until => return (peak.max(rss_bytes(pid)), output),
            () = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(rss_bytes(pid)),
        }
    }
}

on_each_database! {
    /// 1,000 connections that send nothing and 1,000 that trickle a header that never ends:
    /// the broker's memory grows by less than 64 MiB, valid requests are served meanwhile, the
    /// timeouts close every one of them, and the memory comes back.
    async fn a_flood_of_idle_and_half_sent_connections_costs_little_and_is_let_go(db: Database) {
        let fds = raise_open_files(8192);
        assert!(fds >= 4096, "the test needs 4,096 open files, has {fds}");
        let broker = Broker::start(
            BrokerOptions::new()
                .database(db)
                .env("BROKER_HTTP_HEADER_READ_TIMEOUT_SECONDS", 3)
                .env("BROKER_HTTP_IDLE_TIMEOUT_SECONDS", 3)
                .env("BROKER_HTTP_MAX_CONNECTIONS_PER_PEER", 5000),
        )
        .await;
        let pid = broker.pid().expect("brokerd runs");
        let addr = gateway_addr(broker.base_url());
        for _ in 0..50 {
            broker.get("/health").await.expect_status(200);
        }
        let baseline = rss_bytes(pid);

        let started = Instant::now();
        let mut idle = open_connections(addr, 1000).await;
        let trickling: Vec<_> = open_connections(addr, 1000)
            .await
            .into_iter()
            .map(|stream| tokio::spawn(trickle_header(stream)))
            .collect();
        let attack = async {
            // Valid requests are answered while the flood is open.
            let mut served = 0;
            for _ in 0..10 {
                broker.get("/health").await.expect_status(200);
                served += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let idle_closed: Vec<bool> = idle
                .iter_mut()
                .map(|stream| closed_by_server(stream, Duration::from_secs(20)))
                .collect::<FuturesUnordered<_>>()
                .collect()
                .await;
            let mut trickled = Vec::new();
            for task in trickling {
                trickled.push(task.await.expect("a trickling connection"));
            }
            (served, idle_closed, trickled)
        };
        let (peak, (served, idle_closed, trickled)) = peak_rss_while(pid, attack).await;
        let all_closed_after = started.elapsed();
        drop(idle);
        let slowest_trickle = trickled.iter().max().copied().unwrap_or_default();

        // Memory comes back once the connections are gone.
        let returned_by = Instant::now() + Duration::from_secs(60);
        let mut after = rss_bytes(pid);
        while after > baseline + 8 * MIB && Instant::now() < returned_by {
            tokio::time::sleep(Duration::from_secs(1)).await;
            after = rss_bytes(pid);
        }
        println!(
            "RSS: baseline {:.1} MiB, peak with 2,000 open connections {:.1} MiB (+{:.1}), after \
             they closed {:.1} MiB; all closed by the server {:.1} s after the first opened \
             (slowest trickling header cut at {:.1} s); {served} valid requests served meanwhile",
            baseline as f64 / MIB as f64,
            peak as f64 / MIB as f64,
            peak.saturating_sub(baseline) as f64 / MIB as f64,
            after as f64 / MIB as f64,
            all_closed_after.as_secs_f64(),
            slowest_trickle.as_secs_f64(),
        );
        assert!(
            idle_closed.iter().all(|closed| *closed),
            "{} idle connections still open after 20 s",
            idle_closed.iter().filter(|closed| !**closed).count()
        );
        assert!(
            slowest_trickle < Duration::from_secs(10),
            "a header trickled for {slowest_trickle:?}"
        );
        assert!(
            peak < baseline + 64 * MIB,
            "RSS grew by {} MiB",
            (peak - baseline) / MIB
        );
        assert!(
            after <= baseline + 8 * MIB,
            "RSS {} MiB a minute after the connections closed, baseline {} MiB",
            after / MIB,
            baseline / MIB
        );
        broker.get("/health").await.expect_status(200);
    }
}

on_each_database! {
    /// With three connections per peer, a fourth from 127.0.0.1 is closed at once while
    /// 127.0.0.2 is served, and a place freed is a place for the next connection.
    async fn connections_beyond_a_peers_share_are_refused_while_others_are_served(db: Database) {
        let broker = Broker::start(
            BrokerOptions::new()
                .database(db)
                .env("BROKER_HTTP_MAX_CONNECTIONS_PER_PEER", 3),
        )
        .await;
        let addr = gateway_addr(broker.base_url());
        let keep_alive = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut stream = connect_from(LOOPBACK, addr).await.unwrap();
            let status = status_of(&mut stream, keep_alive.as_bytes(), Duration::from_secs(5)).await;
            assert_eq!(status, Some(200), "one of the peer's three connections");
            held.push(stream);
        }

        let refused = Instant::now();
        assert_eq!(get_from(LOOPBACK, addr, "/health").await, None, "a fourth from 127.0.0.1");
        assert!(refused.elapsed() < Duration::from_secs(2), "refused at once: {:?}", refused.elapsed());
        assert_eq!(get_from(OTHER_PEER, addr, "/health").await, Some(200), "127.0.0.2");

        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = None;
        while status.is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            status = get_from(LOOPBACK, addr, "/health").await;
        }
        assert_eq!(status, Some(200), "a freed place is taken again");
    }
}

/// `GET /health` with one header `X-Pad` of `bytes` bytes: its status, `None` when closed.
async fn padded_get(addr: SocketAddr, bytes: usize) -> Option<u16> {
    let mut stream = connect_from(LOOPBACK, addr).await.ok()?;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    );
    status_of(&mut stream, request.as_bytes(), Duration::from_secs(5)).await
}

on_each_database! {
    /// The default header limit is 64 KiB: 32 KiB passes, 100 KiB gets 431 and 200 kB is
    /// refused (431, or the connection closed while it is still being sent).
    async fn oversized_headers_are_refused(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let addr = gateway_addr(broker.base_url());
        assert_eq!(padded_get(addr, 32 * 1024).await, Some(200));
        assert_eq!(padded_get(addr, 100 * 1024).await, Some(431));
        let status = padded_get(addr, 200_000).await;
        assert!(matches!(status, Some(431) | None), "a 200 kB header: {status:?}");
    }
}

/// Asserts a 429 problem with a `Retry-After` of at most `max_wait` seconds.
#[track_caller]
fn assert_too_many_requests(reply: &broker_tests::Reply, max_wait: u64) {
    let problem = reply.assert_problem(429);
    assert!(
        reply.content_type().starts_with("application/problem+json"),
        "{}",
        reply.content_type()
    );
    assert_eq!(problem["title"], "Too Many Requests");
    assert!(problem["detail"].is_string(), "{problem}");
    let wait: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=max_wait).contains(&wait), "Retry-After {wait}");
}

on_each_database! {
    /// `details=3/min`: the sender's fourth details call in the minute gets 429 with
    /// `Retry-After`; the recipient's details and the sender's overview are not limited by it.
    async fn a_client_over_its_limit_gets_429_and_no_one_else_does(db: Database) {
        let options = Scenario::options(db).env("BROKER_RATE_LIMITS", "details=3/min");
        let scenario = Scenario::start_with(options, AccessList::Disabled).await;
        let id = scenario.published(b"rate limited").await;
        for _ in 0..3 {
            scenario.details(&scenario.sender.write, &id).await.expect_status(200);
        }
        let refused = scenario.details(&scenario.sender.write, &id).await;
        assert_too_many_requests(&refused, 20);
        scenario.details(&scenario.recipient.read, &id).await.expect_status(200);
        for _ in 0..5 {
            scenario.overview(&scenario.sender.write, &id).await.expect_status(200);
        }
    }
}

on_each_database! {
    /// `altinn`: search is limited to 10 a minute per client, as Altinn's API management does;
    /// without `BROKER_RATE_LIMITS` nothing is.
    async fn the_altinn_preset_limits_search_and_no_setting_limits_nothing(db: Database) {
        let options = Scenario::options(db).env("BROKER_RATE_LIMITS", "altinn");
        let scenario = Scenario::start_with(options, AccessList::Disabled).await;
        let query = format!("resourceId={}", broker_tests::scenario::RESOURCE);
        let query = query.as_str();
        for _ in 0..10 {
            let reply = scenario.search(&scenario.sender.write, query).await;
            assert_ne!(reply.status.as_u16(), 429, "{}", reply.body);
        }
        let refused = scenario.search(&scenario.sender.write, query).await;
        assert_too_many_requests(&refused, 6);
        drop(scenario);

        let unlimited = Broker::start(BrokerOptions::new()).await;
        let client = unlimited.register_client(broker_tests::DIGDIR, &[WRITE]).await;
        let token = client.token(&[WRITE]).await;
        for _ in 0..30 {
            let reply = unlimited
                .get_as(&token, &format!("/broker/api/v1/filetransfer?{query}"))
                .await;
            assert_ne!(reply.status.as_u16(), 429, "{}", reply.body);
        }
    }
}

on_each_database! {
    /// `token=2/min` counts `POST /token` by the caller's address, which has no token yet.
    async fn token_requests_are_limited_by_peer_address(db: Database) {
        let broker = Broker::start(
            BrokerOptions::new()
                .database(db)
                .env("BROKER_RATE_LIMITS", "token=2/min"),
        )
        .await;
        let client = broker.register_client(broker_tests::DIGDIR, &[WRITE]).await;
        for _ in 0..2 {
            client.request_token(&client.assertion()).await.expect_status(200);
        }
        let refused = client.request_token(&client.assertion()).await;
        assert_too_many_requests(&refused, 30);
    }
}

on_each_database! {
    /// Two `Authorization` headers are refused with 400 on every kind of authenticated route,
    /// even when both carry the same valid token.
    async fn two_authorization_headers_are_a_bad_request(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let client = broker.register_client(broker_tests::DIGDIR, &[WRITE]).await;
        let token = client.token(&[WRITE]).await;
        let bearer = format!("Bearer {token}");
        let admin = format!("Bearer {}", broker.admin_token());
        let cases = [
            (Method::GET, "/broker/api/v1/filetransfer?resourceId=r".to_owned(), bearer.clone(), bearer.clone()),
            (Method::GET, format!("/broker/api/v1/filetransfer/{}", uuid::Uuid::new_v4()), bearer.clone(), "Bearer someone-else".to_owned()),
            (Method::GET, "/api/v1/whoami".to_owned(), bearer.clone(), admin.clone()),
            (Method::GET, "/admin/v1/clients".to_owned(), admin.clone(), admin.clone()),
        ];
        for (method, path, first, second) in cases {
            let request = broker
                .request(method, &path)
                .header("authorization", first)
                .header("authorization", second);
            let reply = broker.send(request).await;
            let problem = reply.assert_problem(400);
            assert!(
                reply.content_type().starts_with("application/problem+json"),
                "{path}: {}",
                reply.content_type()
            );
            assert!(
                problem["detail"].as_str().unwrap_or_default().contains("Authorization"),
                "{path}: {problem}"
            );
        }
        broker.whoami(&token).await.expect_status(200);
    }
}
