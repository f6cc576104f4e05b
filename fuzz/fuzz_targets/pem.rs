//! libFuzzer entry point of [`sealant_fuzz::pem`] (scripts/fuzz.sh).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealant_fuzz::pem(data));
