/// Why a search could not be understood. Each variant says it in English and Japanese.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error("unknown search parameter '{0}'")]
    UnknownParameter(String),
    #[error("the value '{value}' is not valid for '{param}': {why}")]
    BadValue { param: String, value: String, why: String, why_ja: String },
    #[error("'{0}' is not supported by this server yet")]
    Unsupported(String),
    /// The search asks for more than a configured limit allows.
    #[error("{0}")]
    Limit(#[from] tsunagu_limits::LimitExceeded),
}

impl SearchError {
    pub fn japanese(&self) -> String {
        match self {
            SearchError::UnknownParameter(p) => format!("検索パラメータ '{p}' は不明です"),
            SearchError::BadValue { param, value, why_ja, .. } => {
                format!("検索パラメータ '{param}' の値 '{value}' が不正です（{why_ja}）")
            }
            SearchError::Unsupported(what) => format!("'{what}' にはまだ対応していません"),
            SearchError::Limit(l) => l.message_ja(),
        }
    }
}
