//! MPA startup-frame reader and negotiation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| eta_mpa::fuzzing::startup(data));
