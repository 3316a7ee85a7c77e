//! `trajhost serve`, through the real binary: the JSON endpoints over a results folder made by
//! hand while it changes under the server, the token and Host rules, the refusal of every path
//! out of the results folder, and the page in headless Chromium updating without a reload.

mod common;

use common::{epoch_record, final_metrics, get, http, jsonl, progress_text, Browser, Served};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use trajhost::clock::{unix_now, utc_timestamp};

/// A results folder with a finished run (with a gate decision and checkpoints), a live one
/// and a stale one, a stray file, and a secret beside (outside) it that a link inside points to.
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
    std::fs::write(finished.join("checkpoints/epoch-0005.json"), "{}").unwrap();
    std::fs::write(finished.join("page.html"), "<script>alert(1)</script>").unwrap();
    run(
        "live",
        "training",
        "3/10 (25.0%)",
        "4.2 min",
        5,
        &[0.41, 0.55],
    );
    run(
        "stale",
        "training",
        "2/10 (12.5%)",
        "20.0 min",
        3600,
        &[0.3],
    );
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
    let refused = common::trajhost(
        &["serve", results.to_str().unwrap(), "--addr", "0.0.0.0:0"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    let message = common::text(&refused);
    assert!(
        message.contains("--addr 0.0.0.0:0 is reachable from other machines: give --token"),
        "{message}"
    );
    let empty = common::trajhost(&["serve", results.to_str().unwrap(), "--token", ""], &[]);
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
    assert_eq!(get(addr, "/api/runs?token=s3cre").status, 401);
    assert_eq!(get(addr, "/?token=s3cret%20").status, 401);
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/runs",
            &[("Authorization", "Bearer wrong")]
        )
        .status,
        401
    );
    assert_eq!(
        get(addr, "/files/finished/validation_metrics.json").status,
        401
    );
    let by_header = http(
        addr,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(by_header.status, 200);
    assert_eq!(by_header.json()["runs"].as_array().unwrap().len(), 3);
    assert_eq!(get(addr, "/api/runs?token=s3cret").status, 200);
    assert_eq!(get(addr, "/?token=s3cret").status, 200);
    assert_eq!(
        get(addr, "/files/finished/validation_metrics.json?token=s3cret").status,
        200
    );
    // With the token, any Host (a name the laptop knows the machine by) is fine...
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/runs?token=s3cret",
            &[("Host", "trainer.lan:8686")]
        )
        .status,
        200
    );
    // ...and the folder's boundary still holds.
    assert_eq!(
        get(addr, "/files/%2e%2e/secret.txt?token=s3cret").status,
        400
    );
    assert_eq!(
        get(addr, "/files/finished/leak.txt?token=s3cret").status,
        403
    );
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
            text: document.body.innerText })",
    );
    assert_eq!(drawn["cards"], 3);
    assert!(drawn["curves"].as_u64().unwrap() >= 12, "{drawn}");
    assert_eq!(
        drawn["matrices"], 3,
        "a finished run's test matrix, the others' latest validation one"
    );
    let text = drawn["text"].as_str().unwrap();
    for expected in [
        "passed: goes on to the full run",
        "0.00056",
        "curve-fit limit MSE",
        "✓ 90.0%",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }

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
