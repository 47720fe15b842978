//! `/metrics` stays bounded whatever names clients send: thousands of invented models,
//! fallback providers, `x-bf-prom-*` values and paths, against the real binary, and the
//! names the config declares keep their own label values afterwards.

#![allow(
    clippy::unwrap_used,
    reason = "the helpers below are test code and fail the test loudly"
)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// Requests in the flood, spread over [`CONNECTIONS`] keep-alive connections; the first
/// [`FLOOD_FILL`] fill every cap.
const FLOOD: usize = 3_000;
const FLOOD_FILL: usize = 2_000;
const CONNECTIONS: usize = 6;
/// Upper bounds for the whole `/metrics` text after the flood. With every per-kind cap full
/// this flood leaves about 8,000 lines / 950 KB (128 admitted models are most of it); before
/// label values were bounded it left 94,564 lines / 40 MB.
const MAX_LINES: usize = 10_000;
const MAX_BYTES: usize = 1_250_000;

fn flood_config(upstream: &str) -> Value {
    json!({
        "providers": {
            "openai": {
                "keys": [
                    {"value": "sk-any", "models": [], "weight": 1},
                    {"value": "sk-listed", "models": ["configured-model"], "weight": 1}
                ],
                "network_config": {"base_url": upstream, "max_retries": 0}
            },
            "my-vllm": {
                "custom_provider_config": {"base_provider_type": "openai"},
                "keys": [],
                "network_config": {"base_url": upstream, "max_retries": 0}
            }
        }
    })
}

/// (lines, bytes) of `text`.
fn size(text: &str) -> (usize, usize) {
    (text.lines().count(), text.len())
}

/// Every distinct value of `label` on the series lines of `text`.
fn values_of(text: &str, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let start = l.find(&key)? + key.len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_owned())
        })
        .collect()
}

async fn scrape(client: &reqwest::Client, gw: &Gateway) -> String {
    client
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One request of the flood: the `i % 4` picks an invented model that the upstream answers,
/// a failing primary with an invented fallback provider, an invented streamed model, or an
/// invented path with an oversized custom label value. Every one carries its own
/// `x-bf-prom-team` value.
async fn flood_one(client: &reqwest::Client, base: &str, i: usize) {
    let url = format!("{base}/v1/chat/completions");
    let team = format!("team-{i}");
    let req = match i % 4 {
        0 => client
            .post(&url)
            .json(&chat_body(&format!("openai/invented-model-{i}"), "x")),
        1 => {
            let mut body = chat_body("openai/gpt-4o-mini", "x");
            body["mock"] = json!({"status": 500});
            body["fallbacks"] = json!([format!("invented-provider-{i}/m-{i}")]);
            client.post(&url).json(&body)
        }
        2 => {
            let mut body = chat_body(&format!("openai/invented-stream-{i}"), "a b");
            body["stream"] = json!(true);
            client.post(&url).json(&body)
        }
        _ => client
            .get(format!("{base}/v1/invented-path-{i}"))
            .header("x-bf-prom-team", "t".repeat(200 + i)),
    };
    let req = if i % 4 == 3 {
        req
    } else {
        req.header("x-bf-prom-team", team)
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await.unwrap();
    let expected: &[u16] = match i % 4 {
        0 | 2 => &[200],
        1 => &[400, 500],
        _ => &[404],
    };
    assert!(expected.contains(&status), "request {i}: status {status}");
}

/// Sends requests `range` of the flood over [`CONNECTIONS`] concurrent keep-alive connections.
async fn flood(client: &reqwest::Client, gw: &Gateway, range: std::ops::Range<usize>) {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let client = client.clone();
        let base = gw.url.clone();
        let range = range.clone();
        tasks.spawn(async move {
            for i in range.skip(c).step_by(CONNECTIONS) {
                flood_one(&client, &base, i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_bounded_under_thousands_of_invented_names() {
    let mock = mock().await;
    let gw = Gateway::start_with(
        &flood_config(&mock.url()),
        &["-prometheus-labels", "team"],
        &[],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // A baseline with only real names.
    let ok = client
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-bf-prom-team", "core")
        .json(&chat_body("openai/gpt-4o-mini", "warm up"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let _ = ok.bytes().await.unwrap();
    let before = size(&scrape(&client, &gw).await);

    // Every cap fills during the first flood; the second one, with new names again, must not
    // add series.
    let started = Instant::now();
    flood(&client, &gw, 0..FLOOD_FILL).await;
    let filled = size(&scrape(&client, &gw).await);
    flood(&client, &gw, FLOOD_FILL..FLOOD).await;
    let flood_time = started.elapsed();

    // Names the config declares report under their own label, even after every cap is full.
    for model in ["openai/configured-model", "my-vllm/served-model"] {
        let resp = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .header("x-bf-prom-team", "core")
            .json(&chat_body(model, "after the flood"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let _ = resp.bytes().await.unwrap();
    }
    let text = scrape(&client, &gw).await;
    let after = size(&text);
    eprintln!(
        "/metrics before the flood: {} lines, {} bytes; after {FLOOD_FILL} requests: {} lines, \
         {} bytes; after {FLOOD} requests ({flood_time:?}): {} lines, {} bytes",
        before.0, before.1, filled.0, filled.1, after.0, after.1
    );

    if let Some(path) = std::env::var_os("BIFROST_TEST_DUMP_METRICS") {
        std::fs::write(path, &text).unwrap();
    }
    let models = values_of(&text, "model");
    assert!(models.contains("configured-model"), "{models:?}");
    assert!(models.contains("gpt-4o-mini"), "{models:?}");
    assert!(models.contains("other"), "{models:?}");
    let providers = values_of(&text, "provider");
    assert!(providers.contains("my-vllm"), "{providers:?}");
    assert!(
        !providers.iter().any(|p| p.starts_with("invented")),
        "{providers:?}"
    );
    let fallbacks = text
        .lines()
        .find(|l| l.starts_with("bifrost_fallbacks_total{"))
        .unwrap_or_default();
    assert!(fallbacks.contains("provider=\"other\""), "{fallbacks}");
    let teams = values_of(&text, "team");
    assert!(
        teams.contains("core") && teams.contains("other"),
        "{teams:?}"
    );
    assert!(teams.len() <= 64 + 2, "{} team values", teams.len());
    assert!(teams.iter().all(|t| t.len() <= 64), "{teams:?}");
    let paths = values_of(&text, "path");
    assert!(paths.iter().all(|p| !p.contains("invented")), "{paths:?}");
    // The configured names add their few series; new invented names add none (a little
    // slack for series that appear with timing, such as a queue wait).
    assert!(after.0 <= filled.0 + 150, "{filled:?} then {after:?}");
    assert!(after.0 <= MAX_LINES, "{} lines", after.0);
    assert!(after.1 <= MAX_BYTES, "{} bytes", after.1);
}
