//! Reading a container's log for `engine logs`: the filters and formatting ([`view`]) and an
//! incremental reader that follows a log across rotations ([`follow`]).

pub mod follow;
pub mod generations;
pub mod view;
