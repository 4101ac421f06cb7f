//! custody: the command line over ledger-core and the node API.
fn main() -> anyhow::Result<()> {
    println!("custody {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
