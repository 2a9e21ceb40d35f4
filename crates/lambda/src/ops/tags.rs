//! ListTags, TagResource, UntagResource for functions (`/2017-03-31/tags/{ARN}`).

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use sluice_aws::validate::Validator;

use super::{lookup, Json};
use crate::error::{self, from_store, invalid_parameter, Failure};
use crate::limits;
use crate::service::{json_ok, percent_decode, Call, Lambda};
use crate::store::{Function, StoreError};

type Answer = Result<axum::response::Response, Failure>;

/// The function a tag resource ARN names (only function ARNs are taggable here).
fn resource(lambda: &Lambda, raw: &str) -> Result<Arc<Function>, Failure> {
    let arn = percent_decode(raw);
    if !arn.starts_with("arn:") || !arn.contains(":function:") {
        return Err(invalid_parameter(format!(
            "sluice can tag only functions; {arn} is not a function ARN."
        ))
        .into());
    }
    Ok(lookup(lambda, raw, None)?)
}

pub(crate) async fn list(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = resource(lambda, raw)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({ "Tags": f.record.tags }),
        call.request_id,
    ))
}

pub(crate) async fn tag(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let body = Json::parse(&call.body)?;
    let found = resource(lambda, raw)?;
    let tags = body.string_map("Tags")?;
    let mut v = Validator::new();
    v.required(tags.as_ref(), "tags");
    v.finish()?;
    let tags = tags.unwrap_or_default();
    change(lambda, &found, |t| {
        t.extend(tags.clone());
    })
    .await?;
    Ok(error::empty(StatusCode::NO_CONTENT, call.request_id))
}

pub(crate) async fn untag(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let found = resource(lambda, raw)?;
    let keys = call.query.get("tagKeys").cloned().unwrap_or_default();
    let mut v = Validator::new();
    v.required((!keys.is_empty()).then_some(()), "tagKeys");
    v.finish()?;
    change(lambda, &found, |t| {
        for k in &keys {
            t.remove(k);
        }
    })
    .await?;
    Ok(error::empty(StatusCode::NO_CONTENT, call.request_id))
}

async fn change(
    lambda: &Lambda,
    found: &Function,
    f: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> Result<(), Failure> {
    let arn = lambda.scope.arn(&found.name);
    if found.declared {
        return Err(from_store(StoreError::Declared(found.name.clone()), &arn).into());
    }
    let _writer = lambda.store.lock().await;
    let current = lambda
        .store
        .get(&found.name)
        .ok_or_else(|| error::function_not_found(&arn))?;
    let mut record = current.record.clone();
    f(&mut record.tags);
    if record.tags.len() > limits::TAGS_PER_FUNCTION_MAX {
        return Err(invalid_parameter(format!(
            "The number of tags exceeds the limit of {} tags per function.",
            limits::TAGS_PER_FUNCTION_MAX
        ))
        .into());
    }
    sluice_aws::blocking(|| lambda.store.put(record)).map_err(|e| from_store(e, &arn))?;
    Ok(())
}
