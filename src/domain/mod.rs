//! Domain types: values that are parsed once at the edge and valid from then on.
//!
//! Nothing here knows GraphQL, HTTP or SQL.

mod dataset;
mod email;
mod password;
mod user;

pub use dataset::{ColumnInfo, Dataset, DatasetFormat, DatasetId};
pub use email::Email;
pub use password::Password;
pub use user::{NewUser, Role, User, UserCredentials, UserId};
