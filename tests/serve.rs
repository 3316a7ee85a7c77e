//! `trajhost serve`, through the real binary: the JSON endpoints over a results folder made by
//! hand while it changes under the server, the token and Host rules, the refusal of every path
//! out of the results folder, the server's limits (head size, slow and idle connections,
//! threads, memory, running out of file descriptors), and the page in headless Chromium
//! updating without a reload.

mod common;

use common::{
    args, assert_contains_all, epoch_record, final_metrics, get, http, jsonl, progress_text,
    Browser, Served,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trajhost::clock::{unix_now, utc_timestamp};

/// A results folder with a finished run (with a gate decision and checkpoints), a live one
/// and a stale one, a stray file, a secret beside (outside) it that a link inside points to,
/// and a link `linked` to a run folder outside it.
fn results() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let now = unix_now();
    let run = |name: &str, status: &str, epoch: &str, eta: &str, silent_for: u64, accs: &[f64]| {
        let d = results.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let phase = "validation";
        std::fs::write(
            d.join("PROGRESS.txt"),
            progress_text(name, phase, status, epoch, eta),
        )
        .unwrap();
        std::fs::write(
            d.join("run.log"),
            format!(
                "[{}] start: plugin 'template'\n[{}] heartbeat: epoch {epoch}\n",
                utc_timestamp(now - 3600 - silent_for),
                utc_timestamp(now - silent_for)
            ),
        )
        .unwrap();
        let records: Vec<_> = accs
            .iter()
            .enumerate()
            .map(|(i, &a)| epoch_record(i + 1, phase, a))
            .collect();
        std::fs::write(d.join("metrics.jsonl"), jsonl(&records)).unwrap();
        d
    };
    let finished = run(
        "finished",
        "finished",
        "5/5 (100.0%)",
        "-",
        4000,
        &[0.5, 0.6, 0.7, 0.8, 0.9142],
    );
    let metrics = final_metrics("finished", "validation", 0.9, 0.04, 5);
    std::fs::write(
        finished.join("validation_metrics.json"),
        serde_json::to_string(&metrics).unwrap(),
    )
    .unwrap();
    let records = trajhost::rundir::metrics::read_history(&finished).unwrap();
    let decision = trajhost::gate::decide(&Default::default(), &metrics, &records);
    std::fs::write(
        finished.join("gate.json"),
        serde_json::to_string(&decision).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(finished.join("checkpoints")).unwrap();
    std::fs::write(
        finished.join("checkpoints/epoch-0005.safetensors"),
        vec![0u8; 3000],
    )
    .unwrap();
    // The checkpoint's config: the run card's recipe, with a value that must stay text.
    let mut config = common::tiny_train_config("validation.ron", 5);
    config.mirror_average = true;
    config.backbone = "<img src=x onerror=alert(1)>".into();
    std::fs::write(
        finished.join("checkpoints/epoch-0005.json"),
        serde_json::json!({ "config": config }).to_string(),
    )
    .unwrap();
    std::fs::write(finished.join("page.html"), "<script>alert(1)</script>").unwrap();
    // A robustness table scored with mirror averaging (`eval --shifts-out` pointed at the run).
    let shift = |name: &str, held_out: bool, mse: f64| {
        serde_json::json!({"shift": name, "description": name, "data": "sets", "accuracy": 0.99,
            "mse": mse, "accuracy_drop": 0.01, "mse_ratio": mse / 0.004, "held_out": held_out})
    };
    let robustness = serde_json::json!({"run": "finished", "checkpoint": "c", "epoch": 5,
        "samples": 400, "seed": 1, "mirror_averaged": true,
        "rows": [shift("none", false, 0.004), shift("style_checker", true, 0.0052)]});
    std::fs::write(finished.join("robustness.json"), robustness.to_string()).unwrap();
    let live = run(
        "live",
        "training",
        "3/10 (25.0%)",
        "4.2 min",
        5,
        &[0.41, 0.55],
    );
    // Written when training starts: a live run's curves have their reference lines.
    let baselines = trajhost::rundir::metrics::Baselines {
        mean_position_mse: 0.19,
        constant_velocity_mse: 0.031,
        chance_accuracy: 0.25,
        curve_fit_mse: Some(0.00056),
        curve_fit_mse_per_class: None,
    };
    trajhost::rundir::metrics::write_val_baselines(&live, &baselines).unwrap();
    std::fs::write(results.join("comparison.md"), "# comparison\n").unwrap();
    std::fs::write(results.join("comparison_curves.png"), b"\x89PNG").unwrap();
    run(
        "stale",
        "training",
        "2/10 (12.5%)",
        "20.0 min",
        3600,
        &[0.3],
    );
    // A whole run folder that lives outside the results folder, linked in: not shown.
    let linked = run("linked", "training", "1/10 (10.0%)", "9.0 min", 5, &[0.77]);
    std::fs::rename(&linked, dir.path().join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("linked"), &linked).unwrap();
    std::fs::write(results.join("notes.txt"), "not a run").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), finished.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), results.join("outside")).unwrap();
    (dir, results)
}

fn runs(addr: &str) -> Vec<Value> {
    let answer = get(addr, "/api/runs");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    answer.json()["runs"].as_array().unwrap().clone()
}

fn run<'a>(runs: &'a [Value], name: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no run {name} in {runs:?}"))
}

fn names(runs: &[Value]) -> Vec<&str> {
    runs.iter().map(|r| r["name"].as_str().unwrap()).collect()
}

#[test]
fn the_api_reports_every_run_and_keeps_working_while_files_change() {
    let (_dir, results) = results();
    let served = Served::start(&results, "127.0.0.1:0", &[], &[]);
    let addr = &served.addr;

    let all = runs(addr);
    assert_eq!(names(&all), ["finished", "live", "stale"]);
    let snapshot = get(addr, "/api/runs").json();
    assert_eq!(
        snapshot["seed_groups"],
        serde_json::json!([]),
        "one run per setup"
    );
    assert_eq!(
        snapshot["reports"],
        serde_json::json!(["comparison.md", "comparison_curves.png"])
    );
    let finished = run(&all, "finished");
    assert_eq!(finished["state"], "finished");
    assert_eq!(finished["epoch"], 5);
    assert_eq!(finished["epochs_recorded"], 5);
    assert_eq!(finished["latest"]["val_accuracy"], 0.9142);
    assert_eq!(finished["report"]["metrics"]["test"]["accuracy"], 0.9);
    assert_eq!(
        finished["report"]["metrics"]["baselines"]["curve_fit_mse"],
        0.00056
    );
    assert_eq!(finished["report"]["gate"]["passed"], true);
    assert_eq!(finished["report"]["checklist"][0]["passed"], true);
    assert_eq!(finished["problem"], Value::Null);
    let live = run(&all, "live");
    assert_eq!(live["state"], "training");
    assert_eq!(live["epoch"], 3);
    assert_eq!(live["epochs"], 10);
    assert_eq!(live["eta"], "4.2 min");
    assert_eq!(live["stale"], false);
    assert_eq!(live["fraction"], 0.25);
    assert!(live["heartbeat_age_seconds"].as_u64().unwrap() < 60);
    assert_eq!(
        live["report"]["metrics"],
        Value::Null,
        "no finished phase yet"
    );
    let stale = run(&all, "stale");
    assert_eq!(stale["state"], "training");
    assert_eq!(stale["stale"], true);

    let history = get(addr, "/api/runs/finished/metrics").json();
    assert_eq!(history["records"].as_array().unwrap().len(), 5);
    assert_eq!(history["records"][4]["val"]["accuracy"], 0.9142);
    assert_eq!(history["records"][4]["val"]["confusion"][0][0], 20);

    // An epoch half-appended (being written, or cut short by a kill): the whole lines are
    // shown, without a problem.
    let metrics = results.join("live/metrics.jsonl");
    let line = serde_json::to_string(&epoch_record(3, "validation", 0.62)).unwrap();
    let append = |text: &str| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    append(&line[..40]);
    let live = run(&runs(addr), "live").clone();
    assert_eq!(live["problem"], Value::Null);
    assert_eq!(live["latest"]["epoch"], 2);
    assert_eq!(live["epochs_recorded"], 2);
    append(&format!("{}\n", &line[40..]));
    let live = run(&runs(addr), "live").clone();
    assert_eq!(live["problem"], Value::Null);
    assert_eq!(live["latest"]["epoch"], 3);
    assert_eq!(live["latest"]["val_accuracy"], 0.62);

    // A broken line inside the file: the last good read is served, and the page is told why.
    let good = std::fs::read_to_string(&metrics).unwrap();
    append("{\"epoch\": 4, \"pha\n");
    let all = runs(addr);
    let live = run(&all, "live");
    let problem = live["problem"].as_str().expect("a problem is reported");
    assert!(problem.contains("live/metrics.jsonl:4"), "{problem}");
    assert!(problem.contains("showing what was read at"), "{problem}");
    assert!(
        !problem.contains(results.to_str().unwrap()),
        "paths relative to the results folder: {problem}"
    );
    assert_eq!(live["latest"]["epoch"], 3);
    assert_eq!(live["epochs_recorded"], 3);
    let history = get(addr, "/api/runs/live/metrics").json();
    assert_eq!(history["records"].as_array().unwrap().len(), 3);
    assert!(history["problem"].is_string());
    std::fs::write(&metrics, good).unwrap();

    // A run never read well: listed, with the reason, and no report.
    let broken = results.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("final_metrics.json"), "{\"run\": \"bro").unwrap();
    let all = runs(addr);
    let broken_run = run(&all, "broken");
    assert!(broken_run["problem"]
        .as_str()
        .unwrap()
        .contains("broken/final_metrics.json is not valid"));
    assert_eq!(broken_run["report"], Value::Null);
    // Folders coming and going.
    std::fs::remove_dir_all(&broken).unwrap();
    let newcomer = results.join("newcomer");
    std::fs::create_dir_all(&newcomer).unwrap();
    std::fs::write(
        newcomer.join("PROGRESS.txt"),
        progress_text("newcomer", "validation", "training", "1/10 (0.0%)", "-"),
    )
    .unwrap();
    assert_eq!(
        names(&runs(addr)),
        ["finished", "live", "newcomer", "stale"]
    );

    // One click away: PROGRESS.txt, run.log's tail, the checkpoints.
    let progress = get(addr, "/api/runs/live/progress");
    assert!(
        progress.body.contains("status: training"),
        "{}",
        progress.body
    );
    let log = get(addr, "/api/runs/live/log?lines=1");
    assert_eq!(log.body.lines().count(), 1, "{}", log.body);
    assert!(log.body.contains("heartbeat: epoch 3/10"), "{}", log.body);
    assert_eq!(get(addr, "/api/runs/live/log?lines=x").status, 400);
    let checkpoints = get(addr, "/api/runs/finished/checkpoints").json();
    assert_eq!(checkpoints[1]["name"], "epoch-0005.safetensors");
    assert_eq!(checkpoints[1]["bytes"], 3000);
    assert_eq!(
        get(addr, "/api/runs/live/checkpoints").json(),
        serde_json::json!([])
    );

    // The page, and what is not there.
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>trajhost runs</title>"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        !page.body.contains("src=\"http"),
        "nothing loaded from elsewhere"
    );
    assert_eq!(get(addr, "/api/runs/nope/metrics").status, 404);
    assert_eq!(get(addr, "/api/runs/live/secrets").status, 404);
    assert_eq!(get(addr, "/nothing").status, 404);
    assert_eq!(http(addr, "POST", "/api/runs", &[]).status, 405);
    assert_eq!(http(addr, "DELETE", "/files/live/run.log", &[]).status, 405);
    assert!(results.join("live/run.log").is_file());
}

#[test]
fn no_path_leads_out_of_the_results_folder() {
    let (_dir, results) = results();
    let served = Served::start(&results, "127.0.0.1:0", &[], &[]);
    let addr = &served.addr;

    let inside = get(addr, "/files/finished/validation_metrics.json");
    assert_eq!(inside.status, 200);
    assert!(inside.body.contains("curve_fit_mse"));
    let log = get(addr, "/files/live/run.log");
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // HTML a run folder holds is a download, never a page on this origin.
    let html = get(addr, "/files/finished/page.html");
    assert_eq!(html.header("content-disposition"), Some("attachment"));
    assert_eq!(
        html.header("content-type"),
        Some("application/octet-stream")
    );

    for target in [
        "/files/../secret.txt",
        "/files/finished/../../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2e/secret.txt",
        "/files/finished%2f..%2f..%2fsecret.txt",
        "/files/..%2fsecret.txt",
        "/files/..%5csecret.txt",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/./finished/leak.txt",
        "//etc/passwd",
        "http://127.0.0.1/etc/passwd",
        "/api/runs/..%2f..%2fsecret/metrics",
    ] {
        let answer = get(addr, target);
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert!(!answer.body.contains("TOP SECRET"), "{target}");
    }
    // Links inside the folder that lead outside it.
    for target in ["/files/finished/leak.txt", "/files/outside/secret.txt"] {
        let answer = get(addr, target);
        assert_eq!(answer.status, 403, "{target}: {}", answer.body);
        assert!(!answer.body.contains("TOP SECRET"), "{target}");
    }
    // A run whose own files are links out: listed, but its raw files are not served.
    let sneaky = results.join("sneaky");
    std::fs::create_dir_all(&sneaky).unwrap();
    let secret = results.parent().unwrap().join("secret.txt");
    for file in ["PROGRESS.txt", "run.log", "checkpoints"] {
        let target = if file == "checkpoints" {
            results.parent().unwrap().to_path_buf()
        } else {
            secret.clone()
        };
        std::os::unix::fs::symlink(target, sneaky.join(file)).unwrap();
    }
    std::fs::write(sneaky.join("metrics.jsonl"), "").unwrap();
    for what in ["progress", "log", "checkpoints"] {
        let answer = get(addr, &format!("/api/runs/sneaky/{what}"));
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
        assert!(
            !answer.body.contains("TOP SECRET") && !answer.body.contains("secret.txt"),
            "{what}: {}",
            answer.body
        );
    }
    let listing = get(addr, "/api/runs");
    assert_eq!(listing.status, 200);
    assert!(!listing.body.contains("TOP SECRET"));
    assert_eq!(get(addr, "/files/finished/missing.json").status, 404);
    assert_eq!(
        get(addr, "/files/finished").status,
        404,
        "a folder is not a file"
    );
    // DNS rebinding: a page that renamed itself to this address is refused.
    let rebound = http(addr, "GET", "/api/runs", &[("Host", "evil.example:8686")]);
    assert_eq!(rebound.status, 403);
    assert_eq!(
        http(addr, "GET", "/api/runs", &[("Host", "localhost:8686")]).status,
        200
    );
}

#[test]
fn a_token_guards_every_request_and_other_addresses_need_one() {
    let (_dir, results) = results();
    let refused = common::trajhost(&args!["serve", results, "--addr", "0.0.0.0:0"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    let message = common::text(&refused);
    assert!(
        message.contains("--addr 0.0.0.0:0 is reachable from other machines: give --token"),
        "{message}"
    );
    let empty = common::trajhost(&args!["serve", results, "--token", ""], &[]);
    assert!(
        common::text(&empty).contains("--token is empty"),
        "{}",
        common::text(&empty)
    );
    let missing = common::trajhost(&["serve", "/no/such/results"], &[]);
    assert!(
        common::text(&missing).contains("results folder /no/such/results"),
        "{}",
        common::text(&missing)
    );

    let served = Served::start(&results, "0.0.0.0:0", &["--token", "s3cret"], &[]);
    let addr = &served.addr;
    let bare = get(addr, "/api/runs");
    assert_eq!(bare.status, 401);
    assert_eq!(bare.header("www-authenticate"), Some("Bearer"));
    assert!(!bare.body.contains("finished"));
    let by_header = http(
        addr,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(by_header.status, 200);
    assert_eq!(by_header.json()["runs"].as_array().unwrap().len(), 3);
    let other_host = Some(("Host", "trainer.lan:8686"));
    for (target, header, status) in [
        ("/api/runs?token=s3cre", None, 401),
        ("/?token=s3cret%20", None, 401),
        ("/api/runs", Some(("Authorization", "Bearer wrong")), 401),
        ("/files/finished/validation_metrics.json", None, 401),
        ("/api/runs?token=s3cret", None, 200),
        ("/?token=s3cret", None, 200),
        (
            "/files/finished/validation_metrics.json?token=s3cret",
            None,
            200,
        ),
        // With the token, any Host (a name the laptop knows the machine by) is fine...
        ("/api/runs?token=s3cret", other_host, 200),
        // ...and the folder's boundary still holds.
        ("/files/%2e%2e/secret.txt?token=s3cret", None, 400),
        ("/files/finished/leak.txt?token=s3cret", None, 403),
    ] {
        let answer = http(addr, "GET", target, header.as_slice());
        assert_eq!(answer.status, status, "{target} {header:?}");
    }
    drop(served);

    // The token from the environment keeps it out of `ps`.
    let served = Served::start(
        &results,
        "127.0.0.1:0",
        &[],
        &[("TRAJHOST_SERVE_TOKEN", "env-token")],
    );
    assert_eq!(get(&served.addr, "/api/runs").status, 401);
    assert_eq!(get(&served.addr, "/api/runs?token=env-token").status, 200);
}

/// Evaluated in the page: each row of the runs table as `{name, status, epoch, accuracy}`.
const ROWS: &str = "[...document.querySelectorAll('#runs tbody tr[data-run]')].map(r => ({ name: r.dataset.run, status: r.querySelector('.status').textContent, epoch: r.querySelector('.epoch').textContent, accuracy: r.querySelector('.val-acc').textContent }))";

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

#[test]
fn the_page_in_a_browser_shows_every_run_and_new_epochs_without_a_reload() {
    let Some(chromium) = common::chromium() else {
        eprintln!(
            "\n\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED: no chromium on PATH (apt-get install chromium, or set CHROMIUM);\n\
             !!! the dashboard was NOT tested in a browser.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    };
    let (_dir, results) = results();
    let served = Served::start(&results, "127.0.0.1:0", &[], &[]);
    let mut browser = Browser::launch(&chromium);
    browser.open(&served.url("/"));

    let rows = browser.wait_for(ROWS, Duration::from_secs(15), |rows| {
        rows.as_array().is_some_and(|r| r.len() == 3)
    });
    assert_eq!(row(&rows, "finished")["status"], "finished");
    assert_eq!(row(&rows, "finished")["accuracy"], "91.4%");
    assert_eq!(row(&rows, "live")["status"], "training");
    assert_eq!(row(&rows, "live")["accuracy"], "55.0%");
    assert_eq!(row(&rows, "live")["epoch"], "epoch 3/10 (25.0%)");
    assert_eq!(row(&rows, "stale")["status"], "trainingSTALE");
    assert_eq!(row(&rows, "stale")["accuracy"], "30.0%");
    // The rest of the page: curves per run, the confusion matrix, the gate, the comparison.
    let drawn = browser.eval(
        "({ curves: document.querySelectorAll('#cards .card svg path').length, \
            cards: document.querySelectorAll('#cards .card').length, \
            matrices: document.querySelectorAll('#cards table.cm').length, \
            recipe: document.querySelector('[data-run=finished] details.recipe').textContent, \
            images: document.querySelectorAll('#cards img').length, \
            text: document.body.innerText })",
    );
    assert_eq!(drawn["cards"], 3);
    assert!(drawn["curves"].as_u64().unwrap() >= 12, "{drawn}");
    assert_eq!(
        drawn["matrices"], 3,
        "a finished run's test matrix, the others' latest validation one"
    );
    let recipe = drawn["recipe"].as_str().unwrap();
    assert_contains_all(
        recipe,
        &[
            "recipe",
            "mirror_average",
            "true",
            "<img src=x onerror=alert(1)>",
        ],
    );
    assert_eq!(drawn["images"], 0, "a config's text stays text");
    let text = drawn["text"].as_str().unwrap();
    assert_contains_all(
        text,
        &[
            "passed: goes on to the full run",
            "0.00056",
            "mean position · constant velocity · curve-fit limit",
            "✓ 90.0%",
            "robustness (eval --shifts, epoch 5, mirror-averaged)",
            "held-out styles (eval --shifts, epoch 5, mirror-averaged)",
            "style_checker",
        ],
    );

    dashboard_charts_and_table(&mut browser);

    // A new epoch, written while the page is open, shows up without a reload.
    browser.eval("window.notReloaded = true");
    let record = epoch_record(3, "validation", 0.8342);
    let mut text = std::fs::read_to_string(results.join("live/metrics.jsonl")).unwrap();
    text += &format!("{}\n", serde_json::to_string(&record).unwrap());
    std::fs::write(results.join("live/metrics.jsonl"), text).unwrap();
    let rows = browser.wait_for(ROWS, Duration::from_secs(8), |rows| {
        row(rows, "live")["accuracy"] == "83.4%"
    });
    assert_eq!(
        row(&rows, "live")["accuracy"],
        "83.4%",
        "the new epoch within 8 s"
    );
    assert_eq!(browser.eval("window.notReloaded === true"), true);
    let epochs =
        browser.eval("document.querySelector('#cards .card[data-run=\"live\"] h3').textContent");
    assert!(
        epochs.as_str().unwrap().contains("3 epochs recorded"),
        "{epochs}"
    );
    // The panel: run.log's tail, one click away.
    browser
        .eval("document.querySelector('#runs tr[data-run=\"live\"] button:nth-child(2)').click()");
    let panel = browser.wait_for(
        "document.getElementById('panel-body').textContent",
        Duration::from_secs(5),
        |t| t.as_str().is_some_and(|t| t.contains("heartbeat")),
    );
    assert!(
        panel.as_str().unwrap().contains("heartbeat: epoch 3/10"),
        "{panel}"
    );
}

/// The overlay of all runs (toggles, metric, log scale, time axis, seen in a screenshot),
/// round ticks, the lr chart, baselines on a live run, the report links, and a comparison
/// table that fits 1280 px.
fn dashboard_charts_and_table(browser: &mut Browser) {
    let overlay = browser.wait_for(
        "[...document.querySelectorAll('#overlay-chart path[data-series]')].map(p => p.dataset.series)",
        Duration::from_secs(5),
        |s| s.as_array().is_some_and(|s| s.len() == 3),
    );
    assert_eq!(overlay, serde_json::json!(["finished", "live", "stale"]));
    // Each run in its own colour, as the screenshot shows it.
    let colors = browser.eval(
        "[...document.querySelectorAll('#overlay-chart path[data-series]')].map(p => p.getAttribute('stroke'))",
    );
    let shot = browser.screenshot("#overlay-chart");
    for color in colors.as_array().unwrap() {
        let hex = u32::from_str_radix(&color.as_str().unwrap()[1..], 16).unwrap();
        let want = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
        let seen = shot
            .pixels()
            .filter(|p| (0..3).all(|c| p[c].abs_diff(want[c]) <= 8))
            .count();
        assert!(
            seen >= 10,
            "{color}: {seen} pixels in the overlay's screenshot"
        );
    }
    browser.eval(
        "(() => { const b = document.querySelector('#overlay-runs input[data-run=\"stale\"]'); \
         b.checked = false; b.onchange(); })()",
    );
    let shown =
        browser.eval("document.querySelectorAll('#overlay-chart path[data-series]').length");
    assert_eq!(shown, 2, "a run toggled off leaves the overlay");
    browser.eval(
        "(() => { const m = document.getElementById('overlay-metric'); m.value = 'val.accuracy'; m.onchange(); \
         const x = document.getElementById('overlay-x'); x.value = 'time'; x.onchange(); })()",
    );
    let chart = browser.eval(
        "({ title: document.querySelector('#overlay-chart .title').textContent, \
            axis: document.querySelector('#overlay-chart svg').textContent, \
            ticks: [...document.querySelectorAll('#overlay-chart .ytick')].map(t => t.textContent) })",
    );
    assert_eq!(chart["title"], "validation accuracy", "{chart}");
    assert!(
        chart["axis"]
            .as_str()
            .unwrap()
            .contains("training time (minutes)"),
        "{chart}"
    );
    assert_eq!(
        chart["ticks"],
        serde_json::json!(["0%", "20%", "40%", "60%", "80%", "100%"])
    );

    // Every card: round ticks, whole epochs, an lr chart; the live run's MSE has baselines.
    let cards = browser.eval(
        "[...document.querySelectorAll('#cards .card')].map(c => ({ run: c.dataset.run, \
            titles: [...c.querySelectorAll('.chart .title')].map(t => t.textContent), \
            yticks: [...c.querySelectorAll('.ytick')].map(t => t.textContent), \
            xticks: [...c.querySelectorAll('.xtick')].map(t => t.textContent), \
            refs: c.querySelectorAll('.chart:nth-of-type(3) line.ref').length }))",
    );
    for card in cards.as_array().unwrap() {
        let titles = card["titles"].to_string();
        assert!(titles.contains("learning rate"), "{card}");
        for tick in card["yticks"].as_array().unwrap() {
            let tick = tick.as_str().unwrap();
            let digits = tick.chars().filter(|c| c.is_ascii_digit()).count();
            assert!(digits <= 4, "tick {tick:?} is not a round number: {card}");
        }
    }
    let card_of = |run: &str| {
        let cards = cards.as_array().unwrap();
        cards.iter().find(|c| c["run"] == run).unwrap().clone()
    };
    let finished = card_of("finished");
    assert_eq!(
        finished["xticks"].as_array().unwrap()[..5],
        ["1", "2", "3", "4", "5"].map(serde_json::Value::from),
        "{finished}"
    );
    let live = card_of("live");
    assert!(
        live["refs"].as_u64().unwrap() >= 3,
        "baselines on a live run: {live}"
    );

    let links = browser.eval("document.getElementById('reports').textContent");
    assert!(
        links.as_str().unwrap().contains("comparison_curves.png"),
        "{links}"
    );
    // At 1280 px the comparison table needs no horizontal scrolling.
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    let fits = browser.eval(
        "(() => { const w = document.getElementById('comparison').parentElement; \
         return [w.scrollWidth, w.clientWidth]; })()",
    );
    assert!(
        fits[0].as_f64() <= fits[1].as_f64(),
        "the comparison table is {} px wide in {} px",
        fits[0],
        fits[1]
    );
    browser.call(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    );
}

// ---- the server's limits ----

/// `trajhost serve ROOT --addr 127.0.0.1:0`, its pid known, with the open-files limit set to
/// `open_files` (soft and hard) when given.
struct Limited {
    child: std::process::Child,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    addr: String,
}

impl Limited {
    fn start(root: &Path, open_files: Option<u64>) -> Limited {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trajhost"));
        command
            .arg("serve")
            .arg(root)
            .args(["--addr", "127.0.0.1:0"])
            .env_remove("TRAJHOST_SERVE_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if let Some(n) = open_files {
            // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
            unsafe {
                command.pre_exec(move || common::set_limit(libc::RLIMIT_NOFILE, n));
            }
        }
        let mut child = command.spawn().expect("trajhost serve starts");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "trajhost serve did not start");
        let start = line.find("http://").expect("an address") + "http://".len();
        let bound = &line[start..start + line[start..].find('/').unwrap()];
        Limited {
            addr: bound.to_string(),
            child,
            _stdout: stdout,
        }
    }

    /// A field of /proc/<pid>/status, as a number (`VmRSS` in kB, `Threads`).
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    fn rss_mib(&self) -> u64 {
        self.status("VmRSS") / 1024
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `request` sent as is; what came back before the server closed (or reset) the connection.
fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    // A reset after the answer still leaves the answer read.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A GET request for `target` with `count` filler headers of `width` bytes each.
fn padded_get(addr: &str, target: &str, count: usize, width: usize) -> String {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for i in 0..count {
        head += &format!("X-Filler-{i}: {}\r\n", "x".repeat(width));
    }
    head + "\r\n"
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A normal request answered, and how long it took.
fn timed_get(addr: &str, target: &str) -> (u16, Duration) {
    let start = Instant::now();
    let answer = get(addr, target);
    (answer.status, start.elapsed())
}

/// Raises this test process's own open-files limit (it opens many sockets) and returns it.
fn raise_own_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(1 << 16);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[test]
fn over_long_heads_are_refused_and_a_huge_header_costs_no_memory() {
    let (_dir, results) = results();
    let mut served = Limited::start(&results, None);
    let addr = served.addr.clone();
    assert_eq!(timed_get(&addr, "/api/runs").0, 200);
    let before = served.rss_mib();

    // A request line over 8 KiB, headers over 16 KiB: refused, and the refusal arrives.
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: {addr}\r\n\r\n", "a".repeat(9000));
    let answer = raw(&addr, long_line.as_bytes());
    assert_eq!(status_of(&answer), Some(414), "{answer:.200}");
    let answer = raw(&addr, padded_get(&addr, "/", 400, 60).as_bytes());
    assert_eq!(status_of(&answer), Some(431), "{answer:.200}");
    // A head of normal size just under the limit is still fine.
    let fine = padded_get(&addr, "/api/runs", 100, 100);
    assert_eq!(status_of(&raw(&addr, fine.as_bytes())), Some(200));

    // Three clients each sending a 300 MB header: each is cut off early, and the server's
    // memory does not follow what they send.
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).unwrap();
                stream
                    .set_write_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let start = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Huge: ");
                stream.write_all(start.as_bytes()).unwrap();
                let chunk = vec![b'a'; 1 << 20];
                let mut sent = 0usize;
                while sent < 300 << 20 {
                    match stream.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(e) => return (sent, Some(e.kind())),
                    }
                }
                (sent, None)
            })
        })
        .collect();
    for sender in senders {
        let (sent, error) = sender.join().unwrap();
        assert!(
            matches!(
                error,
                Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
            ),
            "the server closed the connection ({error:?} after {sent} bytes)"
        );
        // What was taken sits in the two kernels' socket buffers (a few MiB), not the server.
        assert!(sent < 64 << 20, "{sent} bytes taken before the refusal");
    }
    let after = served.rss_mib();
    assert!(
        after < before + 64,
        "the server grew from {before} MiB to {after} MiB"
    );
    // `trajhost serve` runs as `trajhost-serve`, which does not load libtorch.
    assert!(after < 300, "the server holds {after} MiB under attack");
    assert!(served.alive());
    assert_eq!(timed_get(&addr, "/api/runs").0, 200);
}

#[test]
fn idle_connections_hold_no_thread_and_do_not_keep_others_waiting() {
    let (_dir, results) = results();
    let served = Limited::start(&results, None);
    let addr = served.addr.clone();
    assert_eq!(timed_get(&addr, "/api/runs").0, 200);
    let threads = served.status("Threads");
    let before = served.rss_mib();

    // 1,000 sockets that send nothing, or half a head, and wait (3,000 checked by hand).
    let count = 1000.min(raise_own_open_files().saturating_sub(100) as usize);
    let idle: Vec<TcpStream> = (0..count)
        .map(|i| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            if i % 2 == 1 {
                stream.write_all(b"GET /api/runs HTTP/1.1\r\nHo").unwrap();
            }
            stream
        })
        .collect();
    let (status, took) = timed_get(&addr, "/api/runs");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    let now = served.status("Threads");
    assert!(
        now <= threads + 2 && now <= 16,
        "{threads} threads before, {now} with {count} idle sockets: no thread for a waiting one"
    );
    let rss = served.rss_mib();
    assert!(
        rss < before + 64,
        "{before} MiB before, {rss} MiB with {count} idle sockets"
    );

    // A head that does not arrive within the deadline (10 s) gets 408 and is closed.
    let mut first = &idle[1];
    first
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut answer = Vec::new();
    let read = first.read_to_end(&mut answer);
    assert!(
        read.is_ok() || !answer.is_empty(),
        "not closed by the server: {read:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || status_of(&answer) == Some(408),
        "{answer}"
    );
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_server() {
    let (_dir, results) = results();
    // Room for the server itself and a few connections: the idle ones below exhaust it.
    let mut served = Limited::start(&results, Some(20));
    let addr = served.addr.clone();
    assert_eq!(timed_get(&addr, "/").0, 200);
    let _idle: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Behind the sixty in the listen queue; the page needs no file of its own.
    let (status, took) = timed_get(&addr, "/");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert!(served.alive());
    drop(_idle);
    let (status, _) = timed_get(&addr, "/");
    assert_eq!(status, 200);
}

#[test]
fn a_request_without_host_is_refused_like_an_empty_host() {
    let (_dir, results) = results();
    let served = Served::start(&results, "127.0.0.1:0", &[], &[]);
    let addr = &served.addr;
    for request in [
        "GET /api/runs HTTP/1.0\r\n\r\n",
        "GET /api/runs HTTP/1.0\r\nHost:\r\n\r\n",
        "GET /api/runs HTTP/1.1\r\nHost: \r\n\r\n",
    ] {
        let answer = raw(addr, request.as_bytes());
        assert_eq!(status_of(&answer), Some(403), "{request:?}: {answer}");
        assert!(!answer.contains("finished"), "{answer}");
    }
    let named = format!("GET /api/runs HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    assert_eq!(status_of(&raw(addr, named.as_bytes())), Some(200));
    // Two Host headers: which one would count? Neither.
    let two = format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\n\r\n");
    assert_eq!(status_of(&raw(addr, two.as_bytes())), Some(400));
    drop(served);

    // With a token, the token is what counts.
    let served = Served::start(&results, "127.0.0.1:0", &["--token", "s3cret"], &[]);
    let answer = raw(
        &served.addr,
        b"GET /api/runs HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n",
    );
    assert_eq!(status_of(&answer), Some(200), "{answer:.200}");
}

#[test]
fn a_run_folder_linked_from_outside_is_neither_listed_nor_served() {
    let (dir, results) = results();
    assert!(dir.path().join("linked/metrics.jsonl").is_file());
    assert!(results.join("linked").is_symlink());
    let served = Served::start(&results, "127.0.0.1:0", &[], &[]);
    let addr = &served.addr;
    let listing = get(addr, "/api/runs");
    assert_eq!(names(&runs(addr)), ["finished", "live", "stale"]);
    assert!(!listing.body.contains("linked"), "{}", listing.body);
    for what in ["metrics", "progress", "log", "checkpoints"] {
        let answer = get(addr, &format!("/api/runs/linked/{what}"));
        assert_eq!(answer.status, 404, "{what}: {}", answer.body);
        assert!(!answer.body.contains("0.77"), "{what}: {}", answer.body);
    }
    assert_eq!(get(addr, "/files/linked/metrics.jsonl").status, 403);
}

/// `trajhost serve` hands over to the `trajhost-serve` beside it only when that binary was built
/// with it: one left from another build (an older dashboard) is not run, and `trajhost` serves
/// from its own process instead, saying why.
#[test]
fn a_lean_server_from_another_build_is_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, results) = results();
    let bin = tempfile::tempdir().unwrap();
    let trajhost = bin.path().join("trajhost");
    common::copy(Path::new(env!("CARGO_BIN_EXE_trajhost")), &trajhost);
    let ran = bin.path().join("ran");
    let stale = bin.path().join("trajhost-serve");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = --build-id ] && {{ echo another-build; exit 0; }}\ntouch {}\nexit 3\n",
        ran.display()
    );
    std::fs::write(&stale, script).unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new(&trajhost)
        .arg("serve")
        .arg(&results)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        line.starts_with("serving "),
        "{line}{}",
        common::text(&output)
    );
    assert!(!ran.exists(), "the stale server was run");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_contains_all(&said, &["from another build", "serving from this process"]);
}
