//! Writes the generated CRD to `crds/sealedsecret.yaml`, the file the drift test
//! compares against. Run from anywhere in the workspace:
//!
//! ```text
//! cargo run -p sealant-crds --example gen-crd
//! ```

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sealedsecret.yaml");
    match std::fs::write(&path, sealant_crds::crd_yaml()) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
