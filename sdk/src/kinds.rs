//! One module per plugin kind: the trait an author implements, the adapter
//! that turns it into the generated bindings, and the export macro.

pub mod agent;
pub mod backend;
pub mod credential_source;
pub mod hook;
