//! MPA FPDU deframer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| eta_mpa::fuzzing::deframer(data));
