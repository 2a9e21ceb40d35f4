//! Tags: AddTagsToStream, RemoveTagsFromStream, ListTagsForStream, and the one tag check
//! every operation that takes tags uses.

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::{Reply, Service};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

impl Service {
    pub(crate) fn add_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let tags = input.string_map("Tags")?;
        v.required(tags.as_ref(), "tags");
        if let Some(t) = &tags {
            check_tags(&mut v, t, "tags");
        }
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let tags = tags.unwrap();
        // The stream is looked up before the tags are read, as on AWS.
        self.streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        validate::check_tag_characters(tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
        self.streams
            .add_tags(&name, tags.into_iter().collect::<BTreeMap<_, _>>())
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn remove_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let keys = input.list("TagKeys")?;
        v.required(keys, "tagKeys");
        let keys: Vec<String> = match keys {
            Some(list) => list
                .iter()
                .map(|k| Input::string_element(k).map(str::to_string))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if input.has("TagKeys") {
            let shown = format!("[{}]", keys.join(", "));
            v.count(keys.len(), "tagKeys", 1, TAG_KEYS_PER_REMOVE_MAX, || {
                shown.clone()
            });
            if keys
                .iter()
                .any(|k| k.is_empty() || k.chars().count() > TAG_KEY_CHARS_MAX)
            {
                v.fail(
                    Some(&shown),
                    "tagKeys",
                    &format!("Member must satisfy constraint: [Member must have length less than or equal to {TAG_KEY_CHARS_MAX}, Member must have length greater than or equal to 1]"),
                );
            }
        }
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        self.streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        validate::check_tag_characters(keys.iter().map(String::as_str))?;
        self.streams
            .remove_tags(&name, &keys)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn list_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartTagKey")?;
        v.range(limit, "limit", Some(1), Some(LIST_TAGS_LIMIT_MAX));
        v.str_len(start, "exclusiveStartTagKey", 1, TAG_KEY_CHARS_MAX);
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let view = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        let page = limit.unwrap_or(LIST_TAGS_LIMIT_MAX) as usize;
        let tags: Vec<(&String, &String)> = view
            .meta
            .tags
            .iter()
            .filter(|(k, _)| start.is_none_or(|s| k.as_str() > s))
            .collect();
        let has_more = tags.len() > page;
        let out = tags
            .into_iter()
            .take(page)
            .map(|(k, v)| {
                Out::map()
                    .str("Key", k.clone())
                    .str("Value", v.clone())
                    .done()
            })
            .collect();
        Ok(Reply::Body(
            Out::map()
                .set("Tags", Out::Array(out))
                .bool("HasMoreTags", has_more)
                .done(),
        ))
    }
}

pub(crate) fn check_tags(v: &mut Validator, tags: &[(String, String)], path: &str) {
    let shown = || {
        format!(
            "{{{}}}",
            tags.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    v.count(tags.len(), path, 1, TAGS_PER_CALL_MAX, shown);
    if tags
        .iter()
        .any(|(k, _)| k.is_empty() || k.chars().count() > TAG_KEY_CHARS_MAX)
    {
        v.fail(
            Some(&shown()),
            path,
            &format!("Map keys must satisfy constraint: [Member must have length less than or equal to {TAG_KEY_CHARS_MAX}, Member must have length greater than or equal to 1]"),
        );
    }
    if tags
        .iter()
        .any(|(_, val)| val.chars().count() > TAG_VALUE_CHARS_MAX)
    {
        v.fail(
            Some(&shown()),
            path,
            &format!("Map value must satisfy constraint: [Member must have length less than or equal to {TAG_VALUE_CHARS_MAX}, Member must have length greater than or equal to 0]"),
        );
    }
}
