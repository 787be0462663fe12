//! DDP/RDMAP receive path against a registered region surrounded by guard memory.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    eta_ddp_core::fuzzing::fuzz_receive(data);
});
