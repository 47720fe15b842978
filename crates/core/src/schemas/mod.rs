//! Bifrost's unified schemas: requests, responses and errors in one OpenAI-shaped vocabulary.

mod error;
mod provider;
mod request;
mod response;

pub use error::*;
pub use provider::*;
pub use request::*;
pub use response::*;
