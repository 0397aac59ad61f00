//! Events delivered to a function in batches, and its answer naming the ones that failed
//! (the shape of Lambda's SQS event source with partial batch responses).

use serde::{Deserialize, Serialize};

use crate::{Envelope, HandleError};

/// What an events function is invoked with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    #[serde(rename = "Records")]
    pub records: Vec<Envelope>,
}

/// What it answers: the events to deliver again (or to park, when `reject`); every other
/// event of the batch is done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures", default)]
    pub failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemFailure {
    /// The event's id.
    #[serde(rename = "itemIdentifier")]
    pub id: String,
    /// It can never succeed: park it now rather than retry.
    #[serde(default)]
    pub reject: bool,
    #[serde(default)]
    pub reason: String,
}

impl ItemFailure {
    pub fn new(event: &Envelope, e: &HandleError) -> ItemFailure {
        ItemFailure {
            id: event.id.to_string(),
            reject: matches!(e, HandleError::Reject(_)),
            reason: e.to_string(),
        }
    }

    pub fn into_error(self) -> HandleError {
        if self.reject { HandleError::Reject(self.reason) } else { HandleError::Retry(self.reason) }
    }
}
