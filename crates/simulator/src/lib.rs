//! The provider simulator (work in progress).
