//! Cells (one record's value for one column, already converted to the column's type) and the
//! column builders that gather them into Arrow arrays, one per column of a batch.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBufferBuilder};
use arrow_schema::{ArrowError, DataType, FieldRef, Fields};

use crate::types::{map_entries_field, struct_fields, ColumnType, LIST_ELEMENT, TIMESTAMP_TZ};

/// A value converted to its column's type; borrows strings from the parsed record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'v> {
    Null,
    Bool(bool),
    /// Any integer column; the conversion checked the column's range.
    Int(i64),
    /// `float` or `double`; the conversion checked a `float`'s range.
    Float(f64),
    Str(Cow<'v, str>),
    Bytes(&'v [u8]),
    /// Unscaled, at the column's scale.
    Decimal(i128),
    /// Days since the epoch.
    Date(i32),
    /// Microseconds since the epoch (UTC).
    Timestamp(i64),
    List(Vec<Cell<'v>>),
    Map(Vec<(Cell<'v>, Cell<'v>)>),
    Struct(Vec<Cell<'v>>),
}

/// Gathers one column's cells. A cell that does not match the builder's type is a bug in the
/// conversion; it fails the batch (`ArrowError`) rather than panicking.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    List {
        element: FieldRef,
        offsets: OffsetBufferBuilder<i32>,
        nulls: NullBufferBuilder,
        child: Box<ColumnBuilder>,
    },
    Map {
        entries: FieldRef,
        offsets: OffsetBufferBuilder<i32>,
        nulls: NullBufferBuilder,
        keys: Box<ColumnBuilder>,
        values: Box<ColumnBuilder>,
    },
    Struct {
        fields: Fields,
        children: Vec<ColumnBuilder>,
        nulls: NullBufferBuilder,
    },
}

fn mismatch(builder: &str, cell: &Cell<'_>) -> ArrowError {
    ArrowError::InvalidArgumentError(format!(
        "internal error: a {cell:?} cell for a {builder} column"
    ))
}

fn narrow<T: TryFrom<i64>>(value: i64) -> Result<T, ArrowError> {
    T::try_from(value).map_err(|_| {
        ArrowError::InvalidArgumentError(format!("internal error: {value} out of range"))
    })
}

/// Every nested length goes through here: offsets are 32-bit.
fn push_length(offsets: &mut OffsetBufferBuilder<i32>, length: usize) -> Result<(), ArrowError> {
    offsets
        .try_push_length(length)
        .map_err(|e| ArrowError::ComputeError(e.to_string()))
}

fn finish_offsets(
    offsets: &mut OffsetBufferBuilder<i32>,
) -> Result<arrow_buffer::OffsetBuffer<i32>, ArrowError> {
    std::mem::replace(offsets, OffsetBufferBuilder::new(0))
        .try_finish()
        .map_err(|e| ArrowError::ComputeError(e.to_string()))
}

impl ColumnBuilder {
    pub(crate) fn new(column_type: &ColumnType) -> Result<ColumnBuilder, ArrowError> {
        Ok(match column_type {
            ColumnType::String | ColumnType::Varchar(_) | ColumnType::Char(_) => {
                ColumnBuilder::Utf8(StringBuilder::new())
            }
            ColumnType::Boolean => ColumnBuilder::Bool(BooleanBuilder::new()),
            ColumnType::TinyInt => ColumnBuilder::Int8(Int8Builder::new()),
            ColumnType::SmallInt => ColumnBuilder::Int16(Int16Builder::new()),
            ColumnType::Int => ColumnBuilder::Int32(Int32Builder::new()),
            ColumnType::BigInt => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Float => ColumnBuilder::Float32(Float32Builder::new()),
            ColumnType::Double => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Decimal { .. } => {
                let DataType::Decimal128(precision, scale) = column_type.arrow_type() else {
                    return Err(ArrowError::InvalidArgumentError(
                        "internal error: decimal type".to_string(),
                    ));
                };
                ColumnBuilder::Decimal(
                    Decimal128Builder::new().with_precision_and_scale(precision, scale)?,
                    precision,
                    scale,
                )
            }
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::new()),
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::new().with_timezone(TIMESTAMP_TZ),
            ),
            ColumnType::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            ColumnType::Array(element) => ColumnBuilder::List {
                element: Arc::new(arrow_schema::Field::new(
                    LIST_ELEMENT,
                    element.arrow_type(),
                    true,
                )),
                offsets: OffsetBufferBuilder::new(0),
                nulls: NullBufferBuilder::new(0),
                child: Box::new(ColumnBuilder::new(element)?),
            },
            ColumnType::Map(key, value) => ColumnBuilder::Map {
                entries: map_entries_field(key, value),
                offsets: OffsetBufferBuilder::new(0),
                nulls: NullBufferBuilder::new(0),
                keys: Box::new(ColumnBuilder::new(key)?),
                values: Box::new(ColumnBuilder::new(value)?),
            },
            ColumnType::Struct(fields) => ColumnBuilder::Struct {
                fields: struct_fields(fields),
                children: fields
                    .iter()
                    .map(|f| ColumnBuilder::new(&f.field_type))
                    .collect::<Result<_, _>>()?,
                nulls: NullBufferBuilder::new(0),
            },
        })
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int8(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::List { offsets, nulls, .. }
            | ColumnBuilder::Map { offsets, nulls, .. } => {
                // A zero length never overflows.
                let _ = offsets.try_push_length(0);
                nulls.append_null();
            }
            ColumnBuilder::Struct {
                children, nulls, ..
            } => {
                // Children stay aligned with the struct: each gets a null slot too.
                for child in children.iter_mut() {
                    child.append_null();
                }
                nulls.append_null();
            }
        }
    }

    pub(crate) fn append(&mut self, cell: &Cell<'_>) -> Result<(), ArrowError> {
        if matches!(cell, Cell::Null) {
            self.append_null();
            return Ok(());
        }
        match (self, cell) {
            (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Int8(b), Cell::Int(v)) => b.append_value(narrow(*v)?),
            (ColumnBuilder::Int16(b), Cell::Int(v)) => b.append_value(narrow(*v)?),
            (ColumnBuilder::Int32(b), Cell::Int(v)) => b.append_value(narrow(*v)?),
            (ColumnBuilder::Int64(b), Cell::Int(v)) => b.append_value(*v),
            // The conversion checked the value fits a float.
            (ColumnBuilder::Float32(b), Cell::Float(v)) => b.append_value(*v as f32),
            (ColumnBuilder::Float64(b), Cell::Float(v)) => b.append_value(*v),
            (ColumnBuilder::Utf8(b), Cell::Str(v)) => b.append_value(v),
            (ColumnBuilder::Binary(b), Cell::Bytes(v)) => b.append_value(v),
            (ColumnBuilder::Decimal(b, ..), Cell::Decimal(v)) => b.append_value(*v),
            (ColumnBuilder::Date(b), Cell::Date(v)) => b.append_value(*v),
            (ColumnBuilder::Timestamp(b), Cell::Timestamp(v)) => b.append_value(*v),
            (
                ColumnBuilder::List {
                    offsets,
                    nulls,
                    child,
                    ..
                },
                Cell::List(items),
            ) => {
                for item in items {
                    child.append(item)?;
                }
                push_length(offsets, items.len())?;
                nulls.append_non_null();
            }
            (
                ColumnBuilder::Map {
                    offsets,
                    nulls,
                    keys,
                    values,
                    ..
                },
                Cell::Map(entries),
            ) => {
                for (key, value) in entries {
                    keys.append(key)?;
                    values.append(value)?;
                }
                push_length(offsets, entries.len())?;
                nulls.append_non_null();
            }
            (
                ColumnBuilder::Struct {
                    children, nulls, ..
                },
                Cell::Struct(cells),
            ) if cells.len() == children.len() => {
                for (child, cell) in children.iter_mut().zip(cells) {
                    child.append(cell)?;
                }
                nulls.append_non_null();
            }
            (builder, cell) => return Err(mismatch(builder.name(), cell)),
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            ColumnBuilder::Bool(_) => "boolean",
            ColumnBuilder::Int8(_) => "tinyint",
            ColumnBuilder::Int16(_) => "smallint",
            ColumnBuilder::Int32(_) => "int",
            ColumnBuilder::Int64(_) => "bigint",
            ColumnBuilder::Float32(_) => "float",
            ColumnBuilder::Float64(_) => "double",
            ColumnBuilder::Utf8(_) => "string",
            ColumnBuilder::Binary(_) => "binary",
            ColumnBuilder::Decimal(..) => "decimal",
            ColumnBuilder::Date(_) => "date",
            ColumnBuilder::Timestamp(_) => "timestamp",
            ColumnBuilder::List { .. } => "array",
            ColumnBuilder::Map { .. } => "map",
            ColumnBuilder::Struct { .. } => "struct",
        }
    }

    /// The array of everything appended since the last `finish`; the builder starts over.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, precision, scale) => {
                // `finish` keeps the builder's precision and scale, but be explicit.
                Arc::new(b.finish().with_precision_and_scale(*precision, *scale)?)
            }
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::List {
                element,
                offsets,
                nulls,
                child,
            } => Arc::new(ListArray::try_new(
                element.clone(),
                finish_offsets(offsets)?,
                child.finish()?,
                nulls.finish(),
            )?),
            ColumnBuilder::Map {
                entries,
                offsets,
                nulls,
                keys,
                values,
            } => {
                let DataType::Struct(entry_fields) = entries.data_type() else {
                    return Err(ArrowError::InvalidArgumentError(
                        "internal error: map entries are not a struct".to_string(),
                    ));
                };
                let pairs = StructArray::try_new(
                    entry_fields.clone(),
                    vec![keys.finish()?, values.finish()?],
                    None,
                )?;
                Arc::new(MapArray::try_new(
                    entries.clone(),
                    finish_offsets(offsets)?,
                    pairs,
                    nulls.finish(),
                    false,
                )?)
            }
            ColumnBuilder::Struct {
                fields,
                children,
                nulls,
            } => {
                let arrays = children
                    .iter_mut()
                    .map(ColumnBuilder::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(
                    fields.clone(),
                    arrays,
                    nulls.finish(),
                )?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int32Array, StringArray};

    #[test]
    fn nested_nulls_keep_children_aligned() {
        let t = ColumnType::parse("struct<a:int,b:array<string>>").unwrap();
        let mut builder = ColumnBuilder::new(&t).unwrap();
        builder
            .append(&Cell::Struct(vec![
                Cell::Int(1),
                Cell::List(vec![Cell::Str("x".into()), Cell::Null]),
            ]))
            .unwrap();
        builder.append(&Cell::Null).unwrap();
        builder
            .append(&Cell::Struct(vec![Cell::Null, Cell::Null]))
            .unwrap();
        let array = builder.finish().unwrap();
        let array = array.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(array.len(), 3);
        assert!(array.is_null(1));
        let a = array
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(a.value(0), 1);
        assert!(a.is_null(1) && a.is_null(2));
        let b = array
            .column(1)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        assert_eq!(b.value_offsets(), &[0, 2, 2, 2]);
        let strings = b.values().as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(strings.value(0), "x");
        assert!(strings.is_null(1));
        // The builder starts over after finish.
        assert_eq!(builder.finish().unwrap().len(), 0);
    }

    #[test]
    fn a_mismatched_cell_is_an_error_not_a_panic() {
        let mut builder = ColumnBuilder::new(&ColumnType::Int).unwrap();
        assert!(builder.append(&Cell::Str("x".into())).is_err());
        assert!(builder.append(&Cell::Int(i64::MAX)).is_err());
        let mut builder = ColumnBuilder::new(&ColumnType::parse("struct<a:int>").unwrap()).unwrap();
        assert!(builder.append(&Cell::Struct(vec![])).is_err());
    }
}
