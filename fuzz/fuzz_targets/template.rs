//! libFuzzer entry point of [`sealant_fuzz::template`] (scripts/fuzz.sh).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealant_fuzz::template(data));
