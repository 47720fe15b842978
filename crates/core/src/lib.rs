//! Bifrost core.
