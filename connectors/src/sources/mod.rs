//! Source kinds: how an instance reads its regional system. One module per kind, named after
//! what it reads; each kind's settings type is a [`Source`], with the progress it commits.
//!
//! **Adding a kind:** a module here whose settings type implements [`Source`], a variant of
//! [`SourceConfig`] (its `kind = "…"` name in the file) and its arm in [`poll`].

pub mod file_drop;
pub mod http_poll;
pub mod sql_poll;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::SourceConfig;
use crate::instance::{Committer, Context, InstanceError};

/// A source kind: how an instance reads its system, and what it remembers to go on from there.
pub(crate) trait Source {
    /// What the kind commits with each batch (a cursor, a watermark, file checksums): read with
    /// [`Committer::progress`] when a poll starts, written with [`Committer::commit`].
    type Progress: Serialize + DeserializeOwned + Default;

    /// Reads what the system has now, committing batches through `committer`. Blocks.
    fn poll(
        &self,
        context: &Context<'_>,
        runtime: &tokio::runtime::Handle,
        committer: &mut Committer<'_, '_>,
    ) -> Result<(), InstanceError>;
}

/// Polls the source `config` describes: the one list of kinds.
pub(crate) fn poll(
    config: &SourceConfig,
    context: &Context<'_>,
    runtime: &tokio::runtime::Handle,
    committer: &mut Committer<'_, '_>,
) -> Result<(), InstanceError> {
    match config {
        SourceConfig::FileDrop(source) => source.poll(context, runtime, committer),
        SourceConfig::HttpPoll(source) => source.poll(context, runtime, committer),
        SourceConfig::SqlPoll(source) => source.poll(context, runtime, committer),
    }
}

impl Source for crate::config::FileDropConfig {
    type Progress = file_drop::FileDropProgress;

    fn poll(
        &self,
        context: &Context<'_>,
        _: &tokio::runtime::Handle,
        committer: &mut Committer<'_, '_>,
    ) -> Result<(), InstanceError> {
        file_drop::poll(context, self, committer)
    }
}

impl Source for http_poll::HttpPollConfig {
    type Progress = http_poll::HttpPollProgress;

    fn poll(
        &self,
        context: &Context<'_>,
        runtime: &tokio::runtime::Handle,
        committer: &mut Committer<'_, '_>,
    ) -> Result<(), InstanceError> {
        http_poll::poll(context, self, runtime, committer)
    }
}

impl Source for sql_poll::SqlPollConfig {
    type Progress = sql_poll::SqlPollProgress;

    fn poll(
        &self,
        context: &Context<'_>,
        runtime: &tokio::runtime::Handle,
        committer: &mut Committer<'_, '_>,
    ) -> Result<(), InstanceError> {
        sql_poll::poll(context, self, runtime, committer)
    }
}
