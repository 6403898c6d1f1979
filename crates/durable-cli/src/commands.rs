//! The client subcommands: data on stdout, messages on stderr, `--json` for scripts.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::api::{Api, Filters, Reply};
use crate::render;

/// How a command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The instance waited for ended Failed or Terminated.
    InstanceFailed,
    /// `durable torture` found violations.
    Violations,
}

pub struct Ctx {
    pub api: Api,
    pub json: bool,
}

impl Ctx {
    pub fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }

    fn done(&self, message: String, body: &Value) {
        if self.json {
            self.print_json(body);
        } else {
            eprintln!("{message}");
        }
    }
}

/// Parses `--input`/event data: must be JSON; a bare word is taken as a JSON string.
pub fn json_arg(text: Option<String>) -> Result<Option<String>> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<Value>(&text) {
        Ok(_) => Ok(Some(text)),
        Err(_) if !text.trim_start().starts_with(['{', '[', '"']) => {
            Ok(Some(serde_json::to_string(&text)?))
        }
        Err(e) => Err(anyhow!("'{text}' is not valid JSON: {e}")),
    }
}

fn finished(status: &str) -> bool {
    matches!(status, "Completed" | "Failed" | "Terminated")
}

pub async fn start(
    ctx: &Ctx,
    name: &str,
    id: Option<&str>,
    input: Option<String>,
    wait: bool,
    timeout: Duration,
) -> Result<Outcome> {
    let input = json_arg(input)?;
    let reply = ctx.api.start(name, id, input.as_deref()).await?;
    let id = reply
        .body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server's answer has no instance id"))?
        .to_string();
    if !wait {
        if ctx.json {
            ctx.print_json(&reply.body);
        } else {
            println!("{id}");
            eprintln!("started {name} as {id}");
        }
        return Ok(Outcome::Ok);
    }
    let spinner = (!ctx.json).then(|| {
        let s = ProgressBar::new_spinner();
        s.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
        );
        s.enable_steady_tick(Duration::from_millis(100));
        s
    });
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let body = loop {
        let body = ctx.api.status(&id, false).await?.body;
        let status = render::cell(body.get("runtimeStatus"));
        if let Some(s) = &spinner {
            s.set_message(format!("{name} {id}: {status}"));
        }
        if finished(&status) {
            break body;
        }
        if started.elapsed() >= timeout {
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            bail!("gave up waiting after {timeout:?}: instance {id} is still {status}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    if ctx.json {
        ctx.print_json(&body);
    } else {
        print!("{}", render::status(&body));
    }
    Ok(match render::cell(body.get("runtimeStatus")).as_str() {
        "Completed" => Outcome::Ok,
        _ => Outcome::InstanceFailed,
    })
}

pub async fn status(ctx: &Ctx, id: &str) -> Result<Outcome> {
    let body = ctx.api.status(id, false).await?.body;
    if ctx.json {
        ctx.print_json(&body);
    } else {
        print!("{}", render::status(&body));
    }
    Ok(Outcome::Ok)
}

/// The first page of a listing, or every page with `all`: the items, and the token of the next
/// page when one is left.
pub async fn pages<F, Fut>(all: bool, mut fetch: F) -> Result<(Vec<Value>, Option<String>)>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply>>,
{
    let mut items: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let reply = fetch(token.take()).await?;
        let page = match reply.body {
            Value::Array(page) => page,
            other => other
                .get("instances")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        items.extend(page);
        token = reply.continuation;
        if !all || token.is_none() {
            return Ok((items, token));
        }
    }
}

/// Prints a listing: the items as JSON with `--json`, else a table of `row(item)` under
/// `header` and, when a page is left, how to get it (`what` names the items).
pub fn print_listing(
    ctx: &Ctx,
    what: &str,
    (items, next): (Vec<Value>, Option<String>),
    header: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) {
    if ctx.json {
        ctx.print_json(&Value::Array(items));
        return;
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    print!("{}", render::table(header, &rows));
    if let Some(token) = next {
        eprintln!("more {what} exist; use --all to list every page (next page token: {token})");
    }
}

pub async fn list(ctx: &Ctx, filters: &Filters, top: usize, all: bool) -> Result<Outcome> {
    let listing = pages(all, |token| async move {
        ctx.api.list(filters, top, token.as_deref()).await
    })
    .await?;
    let header = ["INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"];
    print_listing(ctx, "instances", listing, &header, |i| {
        vec![
            render::cell(i.get("instanceId")),
            render::cell(i.get("name")),
            render::cell(i.get("runtimeStatus")),
            render::time(i.get("createdTime")),
            render::time(i.get("lastUpdatedTime")),
        ]
    });
    Ok(Outcome::Ok)
}

pub async fn history(ctx: &Ctx, id: &str) -> Result<Outcome> {
    let body = ctx.api.timeline(id).await?.body;
    let rows = body.as_array().cloned().unwrap_or_default();
    if ctx.json {
        ctx.print_json(&Value::Array(rows));
        return Ok(Outcome::Ok);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let result = render::cell(r.get("result"));
            let failed = r.get("failed").and_then(Value::as_bool).unwrap_or(false);
            vec![
                render::cell(r.get("event")),
                render::cell(r.get("name")),
                render::time(r.get("time")),
                render::duration(r.get("durationMs").and_then(Value::as_i64)),
                if failed {
                    format!("FAILED: {result}")
                } else {
                    result
                },
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(&["EVENT", "NAME", "TIME", "DURATION", "RESULT"], &table)
    );
    Ok(Outcome::Ok)
}

pub async fn raise(ctx: &Ctx, id: &str, event: &str, data: Option<String>) -> Result<Outcome> {
    let data = json_arg(data)?;
    let reply = ctx.api.raise(id, event, data.as_deref()).await?;
    ctx.done(format!("raised event '{event}' for {id}"), &reply.body);
    Ok(Outcome::Ok)
}

pub async fn act(ctx: &Ctx, id: &str, action: &str, reason: Option<&str>) -> Result<Outcome> {
    let reply = ctx.api.act(id, action, reason).await?;
    let verb = match action {
        "terminate" => "termination",
        "suspend" => "suspension",
        "resume" => "resumption",
        _ => "rewind",
    };
    ctx.done(format!("{verb} of {id} accepted"), &reply.body);
    Ok(Outcome::Ok)
}

pub async fn restart(ctx: &Ctx, id: &str, new_id: bool) -> Result<Outcome> {
    let reply = ctx.api.restart(id, new_id).await?;
    let new = reply
        .body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string();
    if ctx.json {
        ctx.print_json(&reply.body);
    } else {
        println!("{new}");
        eprintln!("restarted {id} as {new}");
    }
    Ok(Outcome::Ok)
}

pub async fn purge(ctx: &Ctx, id: Option<&str>, filters: &Filters, all: bool) -> Result<Outcome> {
    let any_filter = filters.statuses.is_some() || filters.from.is_some() || filters.to.is_some();
    let reply = match id {
        Some(id) => ctx.api.purge_one(id).await?,
        None if any_filter || all => ctx.api.purge_many(filters).await?,
        None => bail!("give an instance id, a filter (--status, --from, --to) or --all"),
    };
    let n = reply
        .body
        .get("instancesDeleted")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if ctx.json {
        ctx.print_json(&reply.body);
    } else {
        println!("{n}");
        eprintln!("purged {n} instance(s)");
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::json_arg;

    #[test]
    fn inputs_are_json_or_bare_words() {
        assert_eq!(
            json_arg(Some("\"start\"".into())).unwrap().as_deref(),
            Some("\"start\"")
        );
        assert_eq!(json_arg(Some("10".into())).unwrap().as_deref(), Some("10"));
        assert_eq!(
            json_arg(Some("incr".into())).unwrap().as_deref(),
            Some("\"incr\"")
        );
        assert!(json_arg(Some("{bad".into())).is_err());
        assert_eq!(json_arg(None).unwrap(), None);
    }
}
