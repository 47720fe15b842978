//! Mocker plugin.
