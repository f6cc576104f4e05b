//! libFuzzer entry point of [`sealant_fuzz::hybrid_open`] (scripts/fuzz.sh).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealant_fuzz::hybrid_open(data));
