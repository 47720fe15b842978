//! Generates the `bifrost.v1` server and client from `proto/` and writes the file
//! descriptor set that server reflection serves.
//!
//! `protoc` comes from `protoc-bin-vendored`, so a fresh machine needs no hand-installed
//! compiler; a `PROTOC` in the environment (e.g. a distro's newer protoc) wins.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let protos = [
        "bifrost/v1/types.proto",
        "bifrost/v1/error.proto",
        "bifrost/v1/bifrost_service.proto",
    ]
    .map(|p| root.join(p));
    let mut includes = vec![root.clone()];
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
        includes.push(protoc_bin_vendored::include_path()?);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("bifrost_v1_descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Ok(())
}
