//! Shell tests against a fake system.
