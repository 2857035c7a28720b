//! Unit tests of the transport.
