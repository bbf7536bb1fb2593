//! Measuring: every figure of `docs/BENCHMARKS.md`, one file per measured thing.

mod aws;
mod build_lean;
mod cold_init;
mod concurrency;
mod lambda_path;
mod large_e2e;
mod large_page;
mod memory;
mod server;
mod sizes;

pub(crate) use aws::aws_round_trips;
pub(crate) use build_lean::build_lean;
pub(crate) use cold_init::{ColdInit, FIRST_AWS, cold_init, install_copies};
pub(crate) use concurrency::{Level, concurrency};
pub(crate) use large_e2e::{LARGE_RUNS, LargeE2E, LargeRun, PAIRED_RUNS, large_e2e};
pub(crate) use large_page::{LargePage, large_page};
pub(crate) use server::{ServerStack, server_stack};
pub(crate) use sizes::sizes;
