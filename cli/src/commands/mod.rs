//! One module per verb, as youki's `commands/*`.

pub mod completion;
pub mod drain_notice;
pub mod logs;
pub mod man;
pub mod ps;
pub mod rm;
pub mod run;
pub mod start;
pub mod stop;
pub mod supervisor;
