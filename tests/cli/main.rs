//! End-to-end tests: the real `lineage` binary, real child processes, real git repositories
//! and real SQLite files in temporary directories.

mod ancestry;
mod bundle;
mod cache;
mod capture;
mod command_line;
mod compare;
mod contract;
mod diff;
mod distributed;
mod docs;
mod doctor_fuzz;
mod export;
mod faults;
mod fixture;
mod gpu;
mod graph_rules;
mod html;
mod ids;
mod inert;
mod issue16_misc;
mod list;
mod metrics;
mod model;
mod observe;
mod params_argv;
mod pipes;
mod progress;
mod python_api;
mod records;
mod redaction;
mod reliability;
mod rerun;
mod rerun_confined;
mod rerun_plan;
mod run;
mod secrets;
mod settings;
mod show;
mod show_kept;
mod tags;
#[cfg(feature = "team-store")]
mod team;
#[cfg(feature = "team-store")]
mod team_docs;
#[cfg(feature = "team-store")]
mod team_hardening;
#[cfg(feature = "team-store")]
mod team_tls;
mod trust;
mod util;
mod workflow;
