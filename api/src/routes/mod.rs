//! The route table, one module per API area.

pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod swarm;
pub mod system;
pub mod volumes;
