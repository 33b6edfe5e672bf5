//! Every integration test of `tsunagu-auth` in one binary: one link instead of 6, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod assertions;
mod external;
mod login;
mod props;
mod tokens;
mod users;
