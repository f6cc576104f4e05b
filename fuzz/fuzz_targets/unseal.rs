//! libFuzzer entry point of [`sealant_fuzz::unseal`] (scripts/fuzz.sh).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealant_fuzz::unseal(data));
