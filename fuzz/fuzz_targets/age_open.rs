//! libFuzzer entry point of [`sealant_fuzz::age_open`] (scripts/fuzz.sh).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealant_fuzz::age_open(data));
