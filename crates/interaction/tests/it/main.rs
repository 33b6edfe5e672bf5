//! Every integration test of `tsunagu-interaction` in one binary: one link instead of 13, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod differential;

mod check;
mod follow_nodes;
mod lazy_pages;
mod paging_links;
mod reindex;
mod search_ceiling;
mod search_differential;
mod search_differential_combined;
mod search_differential_kinds;
mod search_differential_sort;
mod search_features;
mod search_plans;
mod unchecked_writes;
