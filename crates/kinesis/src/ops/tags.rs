//! Tags: AddTagsToStream, RemoveTagsFromStream, ListTagsForStream, and the one tag check
//! every operation that takes tags uses.

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::{present, stream_member, Deferred, Reply, Service, StreamTarget};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

/// AddTagsToStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTagsToStreamRequest {
    pub stream: StreamTarget,
    /// Tags with characters outside AWS's tag pattern are reported once the stream is found,
    /// as on AWS. A key given twice keeps its last value.
    pub tags: Deferred<BTreeMap<String, String>>,
}

impl AddTagsToStreamRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<AddTagsToStreamRequest, ApiError> {
        let mut v = Validator::new();
        let tags = input.string_map("Tags")?;
        v.required(tags.as_ref(), "tags");
        if let Some(t) = &tags {
            check_tags(&mut v, t, "tags");
        }
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let tags = present(tags)?;
        let tags =
            validate::check_tag_characters(tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
                .map(|()| tags.into_iter().collect());
        Ok(AddTagsToStreamRequest {
            stream: present(stream)?,
            tags,
        })
    }
}

/// RemoveTagsFromStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTagsFromStreamRequest {
    pub stream: StreamTarget,
    /// Keys with characters outside AWS's tag pattern are reported once the stream is found,
    /// as on AWS.
    pub tag_keys: Deferred<Vec<String>>,
}

impl RemoveTagsFromStreamRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<RemoveTagsFromStreamRequest, ApiError> {
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
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let tag_keys =
            validate::check_tag_characters(keys.iter().map(String::as_str)).map(|()| keys);
        Ok(RemoveTagsFromStreamRequest {
            stream: present(stream)?,
            tag_keys,
        })
    }
}

/// ListTagsForStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTagsForStreamRequest {
    pub stream: StreamTarget,
    /// 1 to [`LIST_TAGS_LIMIT_MAX`].
    pub limit: Option<u32>,
    pub exclusive_start_tag_key: Option<String>,
}

impl ListTagsForStreamRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<ListTagsForStreamRequest, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartTagKey")?;
        v.range(limit, "limit", Some(1), Some(LIST_TAGS_LIMIT_MAX));
        v.str_len(start, "exclusiveStartTagKey", 1, TAG_KEY_CHARS_MAX);
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        Ok(ListTagsForStreamRequest {
            stream: present(stream)?,
            limit: limit.map(|n| n as u32),
            exclusive_start_tag_key: start.map(str::to_string),
        })
    }
}

impl Service {
    pub(crate) fn add_tags(&self, request: AddTagsToStreamRequest) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        // The stream is looked up before the tags are read, as on AWS.
        self.streams.describe(name).map_err(|e| self.ctx().map(e))?;
        self.streams
            .add_tags(name, request.tags?)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn remove_tags(
        &self,
        request: RemoveTagsFromStreamRequest,
    ) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        self.streams.describe(name).map_err(|e| self.ctx().map(e))?;
        let keys = request.tag_keys?;
        self.streams
            .remove_tags(name, &keys)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn list_tags(&self, request: ListTagsForStreamRequest) -> Result<Reply, ApiError> {
        let view = self
            .streams
            .describe(request.stream.as_str())
            .map_err(|e| self.ctx().map(e))?;
        let start = request.exclusive_start_tag_key.as_deref();
        let page = request.limit.unwrap_or(LIST_TAGS_LIMIT_MAX as u32) as usize;
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

#[cfg(test)]
mod tests {
    use sluice_aws::{ErrorType, Format};

    use super::*;
    use crate::ops::json_tree;

    const ACCOUNT: &str = "123456789012";

    fn remove(body: &str) -> Result<RemoveTagsFromStreamRequest, ApiError> {
        RemoveTagsFromStreamRequest::parse(Input::root(&json_tree(body), Format::Json)?, ACCOUNT)
    }

    #[test]
    fn tag_requests_are_typed_and_characters_deferred() {
        let add = AddTagsToStreamRequest::parse(
            Input::root(
                &json_tree(r#"{"StreamName":"s1","Tags":{"b":"1","a":"2","b":"3"}}"#),
                Format::Json,
            )
            .unwrap(),
            ACCOUNT,
        )
        .unwrap();
        assert_eq!(add.stream.as_str(), "s1");
        assert_eq!(
            add.tags.unwrap().into_iter().collect::<Vec<_>>(),
            [("a".into(), "2".into()), ("b".into(), "3".into())]
        );
        let r = remove(r#"{"StreamName":"s1","TagKeys":["a","b"]}"#).unwrap();
        assert_eq!(r.tag_keys, Ok(vec!["a".to_string(), "b".to_string()]));
        let r = remove(r#"{"StreamName":"s1","TagKeys":["a\tb"]}"#).unwrap();
        assert_eq!(
            r.tag_keys.unwrap_err().error_type,
            ErrorType::InvalidArgument
        );
    }

    #[test]
    fn remove_tags_keeps_the_order_of_its_checks() {
        // A key of the wrong type is refused before any constraint.
        let e = remove(r#"{"TagKeys":[1]}"#).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Serialization);
        let e = remove(r#"{"TagKeys":[]}"#).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("2 validation errors detected: Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1; Value null at 'streamName' failed to satisfy constraint: Member must not be null")
        );
    }
}
