//! The vault's one error type. Messages are short and lowercase, and never carry personal
//! information or crypto internals (DESIGN.md invariant 4).

use custos_policy::CollectionError;

/// What went wrong. `Clone`, so one failure of a shared commit (the ledger's group commit,
/// a batch of collections) reaches each caller as it was.
#[derive(Debug, Clone)]
pub enum Error {
    /// The policy refused a collection; each error names the request field at fault.
    CollectionRefused(Vec<CollectionError>),
    /// The request names something the policy does not declare, or is malformed.
    Invalid {
        /// Stable snake_case code.
        code: &'static str,
        /// What was wrong and how to fix it.
        message: String,
    },
    /// One field of the request is wrong (a legal instrument's `issuer`, `subjects[2]`, …).
    InvalidField {
        /// Stable snake_case code.
        code: &'static str,
        /// The field at fault, as the request names it.
        field: String,
        /// What was wrong and how to fix it; never the value.
        message: String,
    },
    /// No such subject (or it was erased, for operations that need its data).
    SubjectNotFound,
    /// The API key is unknown or revoked.
    Unauthorized,
    /// The master key does not open this vault, or a ciphertext failed authentication.
    Crypto(&'static str),
    /// The master key could not be read or created.
    MasterKey(String),
    /// The database failed; the message names no value.
    Storage(String),
}

impl Error {
    /// Stable snake_case code, for HTTP problem documents and the ledger.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CollectionRefused(errors) => {
                errors.first().map_or("collection_refused", |e| e.code)
            }
            Self::Invalid { code, .. } | Self::InvalidField { code, .. } => code,
            Self::SubjectNotFound => "subject_not_found",
            Self::Unauthorized => "unauthorized",
            Self::Crypto(_) => "crypto_failure",
            Self::MasterKey(_) => "master_key",
            Self::Storage(_) => "storage_failure",
        }
    }

    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CollectionRefused(errors) => {
                f.write_str("collection refused")?;
                for e in errors {
                    write!(f, "; {}: {}", e.field, e.message)?;
                }
                Ok(())
            }
            Self::Invalid { message, .. } => f.write_str(message),
            Self::InvalidField { field, message, .. } => write!(f, "{field}: {message}"),
            Self::SubjectNotFound => f.write_str("no such subject"),
            Self::Unauthorized => f.write_str("unknown or revoked api key"),
            Self::Crypto(m) => f.write_str(m),
            Self::MasterKey(m) => write!(f, "master key: {m}"),
            Self::Storage(m) => write!(f, "storage: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite errors name SQL and constraint names, never bound values.
        Self::Storage(e.to_string())
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        // A PostgreSQL error's DETAIL can quote a row's values; keep only the SQLSTATE.
        match e.code() {
            Some(code) => Self::Storage(format!("database error {}", code.code())),
            None if e.is_closed() => Self::Storage("database connection closed".into()),
            None => Self::Storage("database connection error".into()),
        }
    }
}

/// The vault's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
