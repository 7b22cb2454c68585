//! Every integration test in one binary: the shared support code is compiled and linked once instead of once per
//! file, which is most of what building the tests cost. Modules run in name order, one test at a time (see
//! deploy/test.sh).

mod in_process;
mod support;

mod api_auth;
mod api_errors;
mod api_hostile;
mod api_layout_preview;
mod api_openapi;
mod api_rooms;
mod api_whip_flood;
mod bench_runs;
mod config_layers;
mod deploy_files;
mod docs_reliability;
mod e2e_av_sync;
mod e2e_broadcast;
mod e2e_browser;
mod e2e_demo;
mod e2e_early_join;
mod e2e_janus;
mod e2e_layouts;
mod e2e_leaks;
mod e2e_limits;
mod e2e_live_outputs;
mod e2e_missing_elements;
mod e2e_network_faults;
mod e2e_observability;
mod e2e_operator_layouts;
mod e2e_operator_page;
mod e2e_output_faults;
mod e2e_output_status;
mod e2e_passthrough;
mod e2e_process_faults;
mod e2e_recording;
mod e2e_rtmps;
mod e2e_rtp_participants;
mod e2e_run;
mod e2e_secrets;
mod e2e_soak;
mod e2e_stopping_on_time;
mod e2e_storage;
mod e2e_webhooks;
mod e2e_whip_web;
mod readme_claims_media;
