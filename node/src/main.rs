//! custody-node: the participant daemon (networking and API arrive with their issue).
fn main() -> anyhow::Result<()> {
    println!(
        "custody-node {}: networking comes with issue 3",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}
