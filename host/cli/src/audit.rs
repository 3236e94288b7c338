//! `clauderon audit` (the proxy's record of every request) and
//! `clauderon config credentials` (which services have a credential, from
//! which source — masked, never the value).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use clauderon_client::Client;
use clauderon_daemon::Home;

#[derive(Args)]
pub struct AuditArgs {
    /// Only this session's requests (name or id).
    #[arg(long, short, add = clap_complete::engine::ArgValueCandidates::new(crate::completions::session_names))]
    pub session: Option<String>,
    /// Keep printing new records as they arrive (Ctrl-C to stop).
    #[arg(long, short)]
    pub follow: bool,
    /// Print one JSON object per line (JSONL: redirect to a file to export).
    #[arg(long)]
    pub json: bool,
    /// Show at most this many of the newest records first.
    #[arg(long, default_value_t = 50)]
    pub last: usize,
}

pub async fn audit(home: &Home, a: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let session = a.session.as_deref().map(|s| format!("&session={}", urlencode(s))).unwrap_or_default();
    // Everything up to now, keeping the newest `last` (or all, for JSONL export).
    let mut after = 0;
    let mut backlog = Vec::new();
    loop {
        let page =
            client.call(reqwest::Method::GET, &format!("/api/audit?after={after}&limit=10000{session}"), None).await?;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        after = page["last_seq"].as_u64().unwrap_or(after);
        let done = records.len() < 10_000;
        backlog.extend(records);
        if done {
            break;
        }
    }
    if !a.json && backlog.len() > a.last {
        backlog.drain(..backlog.len() - a.last);
    }
    if !a.json {
        println!(
            "{:<19} {:<16} {:<9} {:<7} {:<28} {:<5} {:<6} {:<}",
            "TIME", "SESSION", "DECISION", "METHOD", "HOST", "STATUS", "MS", "PATH / NOTE"
        );
    }
    print_all(&backlog, a.json);
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let page =
            client.call(reqwest::Method::GET, &format!("/api/audit?after={after}&limit=10000{session}"), None).await?;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        after = page["last_seq"].as_u64().unwrap_or(after);
        print_all(&records, a.json);
    }
}

fn print_all(records: &[Value], json: bool) {
    for r in records {
        if json {
            println!("{}", clauderon_client::safe_text::json_line(r));
        } else {
            // Hosts and paths are what a session asked for: shown, not obeyed.
            println!("{}", clauderon_client::safe_text::for_terminal(&line(r)));
        }
    }
}

fn line(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let mut note = s("path");
    if let Some(c) = r["credential"].as_str() {
        note.push_str(&format!("  [{c}]"));
    }
    if let Some(reason) = r["reason"].as_str() {
        note.push_str(&format!("  — {reason}"));
    }
    format!(
        "{:<19} {:<16} {:<9} {:<7} {:<28} {:<5} {:<6.1} {}",
        time(r["at_ms"].as_u64().unwrap_or(0)),
        s("session_name"),
        s("decision"),
        s("method"),
        s("host"),
        r["status"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        r["duration_ms"].as_f64().unwrap_or(0.0),
        note
    )
}

/// UTC `YYYY-MM-DD HH:MM:SS` from ms since the epoch.
fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn credentials(home: &Home, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let status = client.call(reqwest::Method::GET, "/api/credentials", None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    let sources: Vec<&str> = status["sources"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
    println!("sources, highest priority first: {}", sources.join(", "));
    println!("{:<14} {:<10} {:<10} {:<}", "SERVICE", "AVAILABLE", "SOURCE", "VALUE");
    for s in status["services"].as_array().into_iter().flatten() {
        let available = s["available"].as_bool().unwrap_or(false);
        println!(
            "{:<14} {:<10} {:<10} {}",
            s["service"].as_str().unwrap_or(""),
            if available { "yes" } else { "no" },
            s["source"].as_str().unwrap_or("-"),
            s["masked"].as_str().unwrap_or("-")
        );
        for e in s["errors"].as_array().into_iter().flatten() {
            println!("    warning: {}", e.as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00");
        assert_eq!(super::time(1_795_700_000_000), "2026-11-26 13:33:20");
    }
}
