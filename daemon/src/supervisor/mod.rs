//! The per-run supervisor process (placeholder until implemented).
pub mod wire;

/// Supervises one run.
pub fn main(_run_dir: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
