//! A load generator that takes the subset of oha's options the bench
//! scripts use, so that CI's smoke passes need not build oha on a fresh
//! machine (bench/lib.sh picks it with `BENCH_LOAD=own`). Figures are
//! measured with oha; this tool's own speed is never quoted.
//!
//! usage: load (-n N | -z SECONDSs) [-c CONNECTIONS] [-m METHOD] [-T TYPE]
//!             [-d BODY | -Z FILE] [--output-format json|quiet] [--no-tui]
//!             (--rand-regex-url URL | URL)
//!
//! `--rand-regex-url` takes the only pattern the scripts use: runs of
//! `[0-9]{K}`, each replaced by K random digits. `-Z` sends the file's
//! lines as bodies in turn. The JSON has oha's summary.requestsPerSec,
//! latencyPercentiles, statusCodeDistribution and errorDistribution (with
//! "aborted due to deadline" for requests cut at the end of `-z`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_bench::Tally;
use boxoffice_testkit::XorShift;

/// The run as the command line asks for it.
struct Plan {
    requests: Option<u64>,
    duration: Option<Duration>,
    connections: u64,
    method: reqwest::Method,
    content_type: Option<String>,
    bodies: Vec<String>,
    url: String,
    random_url: bool,
    json: bool,
}

fn usage(why: &str) -> ! {
    eprintln!("load: {why}");
    eprintln!("usage: load (-n N | -z SECONDSs) [-c C] [-m METHOD] [-T TYPE] [-d BODY | -Z FILE] [--output-format json|quiet] (--rand-regex-url URL | URL)");
    std::process::exit(2);
}

fn parse(args: &[String]) -> Plan {
    let mut plan = Plan {
        requests: None,
        duration: None,
        connections: 50,
        method: reqwest::Method::GET,
        content_type: None,
        bodies: Vec::new(),
        url: String::new(),
        random_url: false,
        json: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "-n" => plan.requests = Some(value().parse().unwrap_or_else(|_| usage("-n N"))),
            "-z" => {
                let v = value();
                let secs: f64 = v
                    .strip_suffix('s')
                    .unwrap_or(&v)
                    .parse()
                    .unwrap_or_else(|_| usage("-z SECONDSs"));
                plan.duration = Some(Duration::from_secs_f64(secs));
            }
            "-c" => plan.connections = value().parse().unwrap_or_else(|_| usage("-c C")),
            "-m" => {
                plan.method = value()
                    .parse()
                    .unwrap_or_else(|_| usage("-m takes an HTTP method"))
            }
            "-T" => plan.content_type = Some(value()),
            "-d" => plan.bodies = vec![value()],
            "-Z" => {
                let path = value();
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| usage(&format!("reading {path}: {e}")));
                plan.bodies = text.lines().map(str::to_string).collect();
            }
            "--output-format" => plan.json = value() == "json",
            "--no-tui" => {}
            "--rand-regex-url" => {
                plan.url = value();
                plan.random_url = true;
            }
            other if !other.starts_with('-') => plan.url = other.to_string(),
            other => usage(&format!("unknown option {other}")),
        }
    }
    if plan.url.is_empty() || plan.requests.is_some() == plan.duration.is_some() {
        usage("a URL and exactly one of -n and -z");
    }
    if plan.connections == 0 {
        usage("-c must be at least 1");
    }
    plan
}

/// `url` with every `[0-9]{K}` replaced by K random digits.
fn random_url(url: &str, rng: &mut XorShift) -> String {
    let mut out = String::with_capacity(url.len() + 16);
    let mut rest = url;
    while let Some(at) = rest.find("[0-9]{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "[0-9]{".len()..];
        let close = after.find('}').unwrap_or_else(|| usage("an unclosed {K}"));
        let digits: u32 = after[..close]
            .parse()
            .unwrap_or_else(|_| usage("only [0-9]{K} patterns"));
        for _ in 0..digits {
            out.push(char::from(b'0' + rng.below(10) as u8));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

async fn connection(
    plan: Arc<Plan>,
    id: u64,
    next: Arc<AtomicU64>,
    until: Option<Instant>,
) -> Tally {
    // A client of its own: one keep-alive connection per worker, as oha's -c.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("HTTP client");
    let mut rng =
        XorShift::new(0x2545_f491_4f6c_dd1d ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut tally = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if plan.requests.is_some_and(|total| n >= total) {
            break;
        }
        let url = if plan.random_url {
            random_url(&plan.url, &mut rng)
        } else {
            plan.url.clone()
        };
        let mut request = client.request(plan.method.clone(), url);
        if let Some(kind) = &plan.content_type {
            request = request.header("content-type", kind);
        }
        if !plan.bodies.is_empty() {
            request = request.body(plan.bodies[(n % plan.bodies.len() as u64) as usize].clone());
        }
        let started = Instant::now();
        let answer = async {
            let res = request.send().await?;
            let code = res.status().as_u16();
            res.bytes().await.map(|_| code)
        };
        let outcome = match until {
            Some(until) => match tokio::time::timeout_at(until.into(), answer).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    *tally
                        .errors
                        .entry("aborted due to deadline".into())
                        .or_default() += 1;
                    break;
                }
            },
            None => answer.await,
        };
        match outcome {
            Ok(code) => {
                tally.latencies.push(started.elapsed());
                *tally.codes.entry(code).or_default() += 1;
            }
            Err(e) => *tally.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plan = Arc::new(parse(&args));
    let started = Instant::now();
    let until = plan.duration.map(|d| started + d);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|id| tokio::spawn(connection(Arc::clone(&plan), id, Arc::clone(&next), until)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        all.merge(task.await.expect("connection task"));
    }
    let report = all.oha_json(started.elapsed());
    if plan.json {
        println!("{report}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_digit_run_is_replaced() {
        let mut rng = XorShift::new(7);
        let url = random_url(
            "http://h/api/events/1/bookings/u[0-9]{12}x[0-9]{2}",
            &mut rng,
        );
        let user = url.rsplit('/').next().expect("a last segment");
        assert_eq!(user.len(), 1 + 12 + 1 + 2, "{url}");
        assert!(
            user.starts_with('u') && user.as_bytes()[13] == b'x',
            "{url}"
        );
        assert!(user[1..13].bytes().all(|b| b.is_ascii_digit()), "{url}");
    }

    #[test]
    fn a_plain_url_is_left_as_it_is() {
        let mut rng = XorShift::new(7);
        assert_eq!(
            random_url("http://h/api/status/1", &mut rng),
            "http://h/api/status/1"
        );
    }
}
