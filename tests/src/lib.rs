//! Placeholder lib for the cross-crate test crate; tests live in tests/tests.
