//! TagDeliveryStream, UntagDeliveryStream, ListTagsForDeliveryStream.

use serde_json::{json, Value as Json};
use sluice_aws::validate::Validator;
use sluice_aws::value::Input;
use sluice_aws::ApiError;

use super::{name_member, present, Firehose};
use crate::error::FirehoseError;
use crate::limits;

const TAG_KEY_PATTERN: &str = "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$";
const TAG_VALUE_PATTERN: &str = "^[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$";

fn tag_chars(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric()
            || c == ' '
            || c.is_whitespace() && !c.is_control()
            || "_.:/=+-@%".contains(c)
    })
}

fn is_tag_key(s: &str) -> bool {
    !s.starts_with("aws:") && tag_chars(s)
}

/// A `Tags` list member: 1 to 50 `{Key, Value}`.
pub(crate) fn parse_tags(
    v: &mut Validator,
    input: Input<'_>,
    path: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(list) = input.list("Tags")? else {
        return Ok(Vec::new());
    };
    v.count(list.len(), path, 1, limits::TAGS_MAX, || {
        format!("{} tags", list.len())
    });
    let mut tags = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let t = Input::element(t, input.format)?;
        let key = t.str("Key")?;
        let value = t.str("Value")?;
        let p = format!("{path}.{}.member", i + 1);
        v.required(key, &format!("{p}.key"));
        v.pattern(key, &format!("{p}.key"), TAG_KEY_PATTERN, is_tag_key);
        v.str_len(key, &format!("{p}.key"), 1, limits::TAG_KEY_CHARS_MAX);
        v.pattern(value, &format!("{p}.value"), TAG_VALUE_PATTERN, tag_chars);
        v.str_len(value, &format!("{p}.value"), 0, limits::TAG_VALUE_CHARS_MAX);
        if let Some(k) = key {
            tags.push((k.to_string(), value.unwrap_or("").to_string()));
        }
    }
    Ok(tags)
}

#[derive(Debug)]
pub struct TagRequest {
    name: String,
    tags: Vec<(String, String)>,
}

impl TagRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        v.required(input.list("Tags")?, "tags");
        let tags = parse_tags(&mut v, input, "tags")?;
        v.finish()?;
        Ok(TagRequest {
            name: present(name)?.to_string(),
            tags,
        })
    }
}

#[derive(Debug)]
pub struct UntagRequest {
    name: String,
    keys: Vec<String>,
}

impl UntagRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let list = input.list("TagKeys")?;
        v.required(list, "tagKeys");
        let mut keys = Vec::new();
        if let Some(list) = list {
            v.count(list.len(), "tagKeys", 1, limits::TAGS_MAX, || {
                format!("{} keys", list.len())
            });
            for (i, k) in list.iter().enumerate() {
                let k = Input::string_element(k)?;
                let p = format!("tagKeys.{}.member", i + 1);
                v.pattern(Some(k), &p, TAG_KEY_PATTERN, is_tag_key);
                v.str_len(Some(k), &p, 1, limits::TAG_KEY_CHARS_MAX);
                keys.push(k.to_string());
            }
        }
        v.finish()?;
        Ok(UntagRequest {
            name: present(name)?.to_string(),
            keys,
        })
    }
}

#[derive(Debug)]
pub struct ListTagsRequest {
    name: String,
    exclusive_start: Option<String>,
    limit: usize,
}

impl ListTagsRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let start = input.str("ExclusiveStartTagKey")?;
        v.pattern(start, "exclusiveStartTagKey", TAG_KEY_PATTERN, is_tag_key);
        v.str_len(start, "exclusiveStartTagKey", 1, limits::TAG_KEY_CHARS_MAX);
        let limit = input.int("Limit")?;
        v.range(limit, "limit", Some(1), Some(limits::LIST_TAGS_LIMIT_MAX));
        v.finish()?;
        Ok(ListTagsRequest {
            name: present(name)?.to_string(),
            exclusive_start: start.map(str::to_string),
            limit: limit.map_or(limits::LIST_TAGS_LIMIT_MAX as usize, |l| l as usize),
        })
    }
}

impl Firehose {
    pub(crate) async fn tag(&self, r: TagRequest) -> Result<Json, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut ds = self
            .lock()
            .get(&r.name)
            .map(|e| e.ds.clone())
            .ok_or_else(|| {
                self.fail(FirehoseError::NotFound {
                    name: r.name.clone(),
                })
            })?;
        for (k, val) in r.tags {
            match ds.tags.iter_mut().find(|(key, _)| *key == k) {
                Some(t) => t.1 = val,
                None => ds.tags.push((k, val)),
            }
        }
        if ds.tags.len() > limits::TAGS_MAX {
            return Err(self.fail(FirehoseError::TooManyTags {
                name: r.name,
                count: ds.tags.len(),
            }));
        }
        sluice_aws::blocking(|| self.store.put(&ds)).map_err(|e| self.fail(e.into()))?;
        if let Some(e) = self.lock().get_mut(&r.name) {
            e.ds.tags = ds.tags;
        }
        Ok(json!({}))
    }

    pub(crate) async fn untag(&self, r: UntagRequest) -> Result<Json, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut ds = self
            .lock()
            .get(&r.name)
            .map(|e| e.ds.clone())
            .ok_or_else(|| {
                self.fail(FirehoseError::NotFound {
                    name: r.name.clone(),
                })
            })?;
        ds.tags.retain(|(k, _)| !r.keys.contains(k));
        sluice_aws::blocking(|| self.store.put(&ds)).map_err(|e| self.fail(e.into()))?;
        if let Some(e) = self.lock().get_mut(&r.name) {
            e.ds.tags = ds.tags;
        }
        Ok(json!({}))
    }

    pub(crate) fn list_tags(&self, r: ListTagsRequest) -> Result<Json, ApiError> {
        let entries = self.lock();
        let e = entries.get(&r.name).ok_or_else(|| {
            self.fail(FirehoseError::NotFound {
                name: r.name.clone(),
            })
        })?;
        let start = match &r.exclusive_start {
            Some(k) => {
                e.ds.tags
                    .iter()
                    .position(|(key, _)| key == k)
                    .map_or(0, |i| i + 1)
            }
            None => 0,
        };
        let rest = &e.ds.tags[start.min(e.ds.tags.len())..];
        let page: Vec<Json> = rest
            .iter()
            .take(r.limit)
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json!({ "Tags": page, "HasMoreTags": rest.len() > r.limit }))
    }
}
