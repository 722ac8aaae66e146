//! Column buffers that become one Parquet file: rows are pushed as typed
//! values in the schema's order, then turned into a polars `DataFrame`.

use polars::prelude::*;
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Str,
    Int,
    Float,
    /// UTC, microseconds (`TIMESTAMP(MICROS, isAdjustedToUTC=true)` in
    /// Parquet: what Spark, Hive, Athena, BigQuery and Trino read as a
    /// timestamp). Pushed as nanoseconds; where those matter the schema keeps
    /// them beside it in an integer column (`start_ns`).
    Time,
    Bool,
    /// A list of text (`LIST<STRING>`).
    List,
}

/// The type of [`Kind::Time`] columns.
pub fn time_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

impl Kind {
    pub fn dtype(self) -> DataType {
        match self {
            Kind::Str => DataType::String,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Time => time_dtype(),
            Kind::Bool => DataType::Boolean,
            Kind::List => DataType::List(Box::new(DataType::String)),
        }
    }
}

/// The polars schema of a table's columns.
pub fn schema(columns: &[(&str, Kind)]) -> Schema {
    columns
        .iter()
        .map(|(name, k)| Field::new((*name).into(), k.dtype()))
        .collect()
}

/// One cell. Text is borrowed from the request where it can be: a row is
/// copied once, into the column's own buffer.
pub enum Val<'a> {
    S(Option<Cow<'a, str>>),
    I(Option<i64>),
    F(Option<f64>),
    /// Nanoseconds since the epoch, UTC.
    T(Option<i64>),
    B(bool),
    L(Vec<Cow<'a, str>>),
}

/// Columns are built as Arrow arrays while rows arrive (no row of owned
/// strings, no second copy when the file is written).
enum Buf {
    S(StringChunkedBuilder),
    I(PrimitiveChunkedBuilder<Int64Type>),
    F(PrimitiveChunkedBuilder<Float64Type>),
    T(PrimitiveChunkedBuilder<Int64Type>),
    B(BooleanChunkedBuilder),
    L(ListStringChunkedBuilder),
}

/// Rows a column's buffers are sized for when a table starts.
const CAPACITY: usize = 1024;

impl Buf {
    fn new(name: &str, kind: Kind) -> Buf {
        let name: PlSmallStr = name.into();
        match kind {
            Kind::Str => Buf::S(StringChunkedBuilder::new(name, CAPACITY)),
            Kind::Int => Buf::I(PrimitiveChunkedBuilder::new(name, CAPACITY)),
            Kind::Float => Buf::F(PrimitiveChunkedBuilder::new(name, CAPACITY)),
            Kind::Time => Buf::T(PrimitiveChunkedBuilder::new(name, CAPACITY)),
            Kind::Bool => Buf::B(BooleanChunkedBuilder::new(name, CAPACITY)),
            Kind::List => Buf::L(ListStringChunkedBuilder::new(name, CAPACITY, CAPACITY * 2)),
        }
    }
}

pub struct Table {
    schema: &'static [(&'static str, Kind)],
    cols: Vec<Buf>,
    rows: usize,
}

impl Table {
    pub fn new(schema: &'static [(&'static str, Kind)]) -> Table {
        let cols = schema.iter().map(|(n, k)| Buf::new(n, *k)).collect();
        Table {
            schema,
            cols,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// One row, values in schema order.
    pub fn push(&mut self, row: Vec<Val<'_>>) {
        debug_assert_eq!(row.len(), self.cols.len());
        for (buf, v) in self.cols.iter_mut().zip(row) {
            match (buf, v) {
                (Buf::S(b), Val::S(v)) => b.append_option(v.as_deref()),
                (Buf::I(b), Val::I(v)) => b.append_option(v),
                (Buf::F(b), Val::F(v)) => b.append_option(v),
                (Buf::T(b), Val::T(v)) => b.append_option(v.map(|ns| ns.div_euclid(1000))),
                (Buf::L(b), Val::L(v)) => b.append_values_iter(v.iter().map(|s| s.as_ref())),
                (Buf::B(b), Val::B(v)) => b.append_value(v),
                _ => unreachable!("row does not match the schema"),
            }
        }
        self.rows += 1;
    }

    /// The rows so far as a DataFrame; the table is left empty.
    pub fn take(&mut self) -> PolarsResult<DataFrame> {
        let rows = std::mem::replace(&mut self.rows, 0);
        let mut columns = Vec::with_capacity(self.cols.len());
        for ((name, kind), buf) in self.schema.iter().zip(self.cols.iter_mut()) {
            let col = match std::mem::replace(buf, Buf::new(name, *kind)) {
                Buf::S(b) => b.finish().into_column(),
                Buf::I(b) => b.finish().into_column(),
                Buf::F(b) => b.finish().into_column(),
                Buf::B(b) => b.finish().into_column(),
                Buf::T(b) => b.finish().into_column().cast(&time_dtype())?,
                Buf::L(mut b) => b.finish().into_column(),
            };
            columns.push(col);
        }
        DataFrame::new(rows, columns)
    }
}
