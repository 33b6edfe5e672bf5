//! The one error type of the crate: a refused ViewDefinition, a failed evaluation, or a
//! failed write. Messages are English (`Display`) and Japanese ([`ViewError::message_ja`]).

use tsunagu_fhirpath::FhirPathError;

pub type Result<T, E = ViewError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The ViewDefinition breaks a structural rule; `at` is a JSON-pointer-like location.
    #[error("invalid ViewDefinition at {at}: {reason}")]
    Invalid { at: String, reason: String },

    /// A FHIRPath expression of the view does not parse or type-check.
    #[error("invalid FHIRPath at {at} (`{expr}`): {source}")]
    Expression {
        at: String,
        expr: String,
        #[source]
        source: FhirPathError,
    },

    /// An expression names `%name` that is neither a view constant nor a known variable.
    #[error("undefined constant %{name} at {at} (`{expr}`)")]
    UndefinedConstant { at: String, expr: String, name: String },

    /// Evaluating an expression against a resource failed.
    #[error("evaluating `{expr}` failed: {source}")]
    Evaluation {
        expr: String,
        #[source]
        source: FhirPathError,
    },

    /// A column without `collection: true` produced several values.
    #[error("column '{column}' is not a collection, but `{expr}` gave {count} values")]
    NotCollection { column: String, expr: String, count: usize },

    /// A value cannot be read as the column's declared type.
    #[error("column '{column}' is declared {declared}, but `{expr}` gave a {found}")]
    TypeMismatch { column: String, expr: String, declared: String, found: String },

    /// A `where` expression gave something other than a single boolean or nothing.
    #[error("where clause `{expr}` must give a boolean, but gave {found}")]
    WhereNotBoolean { expr: String, found: String },

    /// One resource would give more rows than the view allows (nested forEach crossed).
    #[error("one resource gives more than {limit} rows (nested forEach/unionAll crossed)")]
    TooManyRows { limit: usize },

    /// The deadline set with [`crate::with_deadline`] passed during an evaluation.
    #[error("the view ran past its time limit")]
    TimeUp,

    /// A row handed to a sink does not fit the schema it was opened with.
    #[error("row does not fit the output schema: {reason}")]
    RowShape { reason: String },

    #[error("writing view output failed: {0}")]
    Io(#[from] std::io::Error),

    #[error("writing Parquet failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error("building Arrow data failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl ViewError {
    pub(crate) fn invalid(at: impl Into<String>, reason: impl Into<String>) -> Self {
        ViewError::Invalid { at: at.into(), reason: reason.into() }
    }

    /// The limit an expression's evaluation went past (`max_fhirpath_steps`), when that
    /// is what stopped the view.
    pub fn limit_exceeded(&self) -> Option<&tsunagu_limits::LimitExceeded> {
        match self {
            ViewError::Evaluation { source, .. } => source.limit_exceeded(),
            _ => None,
        }
    }

    /// Whether the ViewDefinition itself is at fault (as opposed to the data or the output).
    pub fn is_definition_error(&self) -> bool {
        matches!(self, ViewError::Invalid { .. } | ViewError::Expression { .. } | ViewError::UndefinedConstant { .. })
    }

    /// The message in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            ViewError::Invalid { at, reason } => format!("ViewDefinition が不正です（{at}）: {reason}"),
            ViewError::Expression { at, expr, source } => {
                format!("FHIRPath 式が不正です（{at}、`{expr}`）: {source}")
            }
            ViewError::UndefinedConstant { at, expr, name } => {
                format!("定数 %{name} は定義されていません（{at}、`{expr}`）")
            }
            ViewError::Evaluation { expr, source } => format!("式 `{expr}` の評価に失敗しました: {source}"),
            ViewError::NotCollection { column, expr, count } => {
                format!("列 '{column}' はコレクションではありませんが、`{expr}` が {count} 個の値を返しました")
            }
            ViewError::TypeMismatch { column, expr, declared, found } => {
                format!("列 '{column}' の型は {declared} ですが、`{expr}` が {found} を返しました")
            }
            ViewError::WhereNotBoolean { expr, found } => {
                format!("where 条件 `{expr}` は真偽値を返す必要がありますが、{found} を返しました")
            }
            ViewError::TooManyRows { limit } => {
                format!("1 つのリソースから {limit} 行を超える行ができます（入れ子の forEach・unionAll の組み合わせ）")
            }
            ViewError::TimeUp => "ビューの実行が制限時間を超えました".to_string(),
            ViewError::RowShape { reason } => format!("行が出力スキーマに合いません: {reason}"),
            ViewError::Io(e) => format!("ビューの出力に失敗しました: {e}"),
            ViewError::Parquet(e) => format!("Parquet の書き込みに失敗しました: {e}"),
            ViewError::Arrow(e) => format!("Arrow データの作成に失敗しました: {e}"),
        }
    }
}
