//! placeholder-free empty crate, filled by the crds work
