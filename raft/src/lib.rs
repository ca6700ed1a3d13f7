pub mod ca;
pub fn placeholder() {}
