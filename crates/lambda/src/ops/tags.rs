//! ListTags, TagResource, UntagResource (`/2017-03-31/tags/{ARN}`) for functions and event
//! source mappings.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use sluice_aws::validate::Validator;
use sluice_aws::ApiError;

use super::{lookup, Json};
use crate::error::{self, from_store, invalid_parameter, service, Failure};
use crate::limits;
use crate::mappings::mapping_arn;
use crate::service::{json_ok, percent_decode, Call, Lambda};
use crate::store::{Function, StoreError};

type Answer = Result<axum::response::Response, Failure>;

/// What a tag resource ARN names.
enum Resource {
    Function(Arc<Function>),
    /// An event source mapping, by UUID.
    Mapping(String),
}

/// ResourceNotFoundException for a mapping ARN no mapping has.
fn mapping_not_found() -> ApiError {
    ApiError {
        capital_message: true,
        ..ApiError::not_found("The resource you requested does not exist.")
            .with_status(StatusCode::NOT_FOUND)
    }
}

/// The function or event source mapping a tag resource ARN names.
fn resource(lambda: &Lambda, raw: &str) -> Result<Resource, Failure> {
    let arn = percent_decode(raw);
    if arn.starts_with("arn:") && arn.contains(":event-source-mapping:") {
        let uuid = arn.rsplit(':').next().unwrap_or("");
        return match lambda.mappings.get(uuid) {
            Some(m) if mapping_arn(&lambda.scope, &m.uuid) == arn => {
                Ok(Resource::Mapping(m.uuid.clone()))
            }
            _ => Err(mapping_not_found().into()),
        };
    }
    if !arn.starts_with("arn:") || !arn.contains(":function:") {
        return Err(invalid_parameter(format!(
            "sluice can tag only functions and event source mappings; {arn} is neither."
        ))
        .into());
    }
    Ok(Resource::Function(lookup(lambda, raw, None)?))
}

pub(crate) async fn list(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let tags = match resource(lambda, raw)? {
        Resource::Function(f) => f.record.tags.clone(),
        Resource::Mapping(uuid) => lambda
            .mappings
            .get(&uuid)
            .map(|m| m.tags.clone())
            .ok_or_else(mapping_not_found)?,
    };
    Ok(json_ok(
        StatusCode::OK,
        &json!({ "Tags": tags }),
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
    found: &Resource,
    f: impl FnOnce(&mut BTreeMap<String, String>),
) -> Result<(), Failure> {
    match found {
        Resource::Function(found) => change_function(lambda, found, f).await,
        Resource::Mapping(uuid) => {
            let _writer = lambda.mappings.lock().await;
            let current = lambda.mappings.get(uuid).ok_or_else(mapping_not_found)?;
            let mut record = (*current).clone();
            f(&mut record.tags);
            if record.tags.len() > limits::TAGS_PER_MAPPING_MAX {
                return Err(invalid_parameter(format!(
                    "The number of tags exceeds the limit of {} tags per event source mapping.",
                    limits::TAGS_PER_MAPPING_MAX
                ))
                .into());
            }
            sluice_aws::blocking(|| lambda.mappings.commit(record)).map_err(|e| service(&e))?;
            Ok(())
        }
    }
}

async fn change_function(
    lambda: &Lambda,
    found: &Function,
    f: impl FnOnce(&mut BTreeMap<String, String>),
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
