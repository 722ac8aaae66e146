//! Column buffers that become one Parquet file: rows are pushed as typed
//! values in the schema's order, then turned into a polars `DataFrame`.

use polars::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Str,
    Int,
    Float,
    /// UTC, nanoseconds.
    Time,
    Bool,
}

impl Kind {
    pub fn dtype(self) -> DataType {
        match self {
            Kind::Str => DataType::String,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Time => DataType::Datetime(TimeUnit::Nanoseconds, None),
            Kind::Bool => DataType::Boolean,
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

pub enum Val {
    S(Option<String>),
    I(Option<i64>),
    F(Option<f64>),
    T(Option<i64>),
    B(bool),
}

enum Buf {
    S(Vec<Option<String>>),
    I(Vec<Option<i64>>),
    F(Vec<Option<f64>>),
    T(Vec<Option<i64>>),
    B(Vec<bool>),
}

pub struct Table {
    schema: &'static [(&'static str, Kind)],
    cols: Vec<Buf>,
    rows: usize,
}

impl Table {
    pub fn new(schema: &'static [(&'static str, Kind)]) -> Table {
        let cols = schema
            .iter()
            .map(|(_, k)| match k {
                Kind::Str => Buf::S(Vec::new()),
                Kind::Int => Buf::I(Vec::new()),
                Kind::Float => Buf::F(Vec::new()),
                Kind::Time => Buf::T(Vec::new()),
                Kind::Bool => Buf::B(Vec::new()),
            })
            .collect();
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
    pub fn push(&mut self, row: Vec<Val>) {
        debug_assert_eq!(row.len(), self.cols.len());
        for (buf, v) in self.cols.iter_mut().zip(row) {
            match (buf, v) {
                (Buf::S(b), Val::S(v)) => b.push(v),
                (Buf::I(b), Val::I(v)) => b.push(v),
                (Buf::F(b), Val::F(v)) => b.push(v),
                (Buf::T(b), Val::T(v)) => b.push(v),
                (Buf::B(b), Val::B(v)) => b.push(v),
                _ => unreachable!("row does not match the schema"),
            }
        }
        self.rows += 1;
    }

    /// The rows so far as a DataFrame; the table is left empty.
    pub fn take(&mut self) -> PolarsResult<DataFrame> {
        let rows = std::mem::replace(&mut self.rows, 0);
        let mut columns = Vec::with_capacity(self.cols.len());
        for ((name, _), buf) in self.schema.iter().zip(self.cols.iter_mut()) {
            let name: PlSmallStr = (*name).into();
            let col = match buf {
                Buf::S(b) => Column::new(name, std::mem::take(b)),
                Buf::I(b) => Column::new(name, std::mem::take(b)),
                Buf::F(b) => Column::new(name, std::mem::take(b)),
                Buf::B(b) => Column::new(name, std::mem::take(b)),
                Buf::T(b) => Column::new(name, std::mem::take(b))
                    .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))?,
            };
            columns.push(col);
        }
        DataFrame::new(rows, columns)
    }
}
