//! Bifrost core: one OpenAI-shaped API in front of many LLM providers.
//!
//! Embed it directly:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bifrost_core::{Bifrost, BifrostConfig, RequestContext};
//! use bifrost_core::schemas::{BifrostRequest, ChatMessage, ProviderKey, Role};
//!
//! let config = BifrostConfig::from_json(r#"{"providers":{"openai":{"keys":[{"value":"env.OPENAI_API_KEY"}]}}}"#)?;
//! let bifrost = Bifrost::builder(config).build()?;
//! let req = BifrostRequest::chat(ProviderKey::OpenAI, "gpt-4o-mini", vec![ChatMessage::text(Role::User, "hi")]);
//! let resp = bifrost.chat_completion(&mut RequestContext::new("req-1"), req).await?;
//! println!("{:?}", resp.first_text());
//! # Ok(()) }
//! ```

pub mod config;
pub mod engine;
pub mod keys;
pub mod plugin;
pub mod providers;
pub mod queue;
pub mod retry;
pub mod schemas;
pub mod telemetry;

pub use config::BifrostConfig;
pub use engine::{Bifrost, BifrostBuilder, BifrostStream, InitError};
pub use plugin::{
    ApiRequest, EngineHandle, Plugin, PluginApi, PluginFactory, PluginInitError, PluginNeeds,
    PreHookOutcome, RequestContext,
};
