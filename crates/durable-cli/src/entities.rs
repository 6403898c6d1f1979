//! `durable entity list|get|signal`: durable entities over the HTTP API.

use anyhow::Result;
use serde_json::json;

use crate::api::Filters;
use crate::commands::{Ctx, Outcome, json_arg, pages, print_listing};
use crate::render;

pub async fn list(
    ctx: &Ctx,
    name: &str,
    filters: &Filters,
    top: usize,
    all: bool,
) -> Result<Outcome> {
    let listing = pages(all, |token| async move {
        ctx.api.entities(name, filters, top, token.as_deref()).await
    })
    .await?;
    let header = ["KEY", "STATE", "LAST OPERATION", "LOCKED BY"];
    print_listing(ctx, "entities", listing, &header, |e| {
        vec![
            render::cell(e.pointer("/entityId/key")),
            render::payload(e.get("state"), 60),
            render::time(e.get("lastOperationTime")),
            render::cell(e.get("lockedBy")),
        ]
    });
    Ok(Outcome::Ok)
}

pub async fn get(ctx: &Ctx, name: &str, key: &str) -> Result<Outcome> {
    let body = ctx.api.entity(name, key).await?.body;
    if ctx.json {
        ctx.print_json(&body);
        return Ok(Outcome::Ok);
    }
    let id = format!(
        "@{}@{}",
        render::cell(body.pointer("/entityId/name")),
        render::cell(body.pointer("/entityId/key"))
    );
    let rows = [
        ("Entity", id),
        ("State", render::payload(body.get("state"), 400)),
        (
            "Last operation",
            render::time(body.get("lastOperationTime")),
        ),
        ("Locked by", render::cell(body.get("lockedBy"))),
        ("Backlog", render::cell(body.get("backlogQueueSize"))),
    ];
    print!("{}", render::block(&rows));
    Ok(Outcome::Ok)
}

pub async fn signal(
    ctx: &Ctx,
    name: &str,
    key: &str,
    op: &str,
    input: Option<String>,
) -> Result<Outcome> {
    let input = json_arg(input)?;
    ctx.api.signal(name, key, op, input.as_deref()).await?;
    if ctx.json {
        let entity_id = json!({"name": name.to_ascii_lowercase(), "key": key});
        ctx.print_json(&json!({"entityId": entity_id, "operation": op, "accepted": true}));
    } else {
        eprintln!("signalled '{op}' to @{}@{key}", name.to_ascii_lowercase());
    }
    Ok(Outcome::Ok)
}
