//! Records the git revision and the rustc version for `kinesin_build_info` (see src/process.rs).
//! Both are optional: a build without git (a source tarball, a container build without `.git`)
//! says `unknown`, or what `KINESIN_REVISION` says.

use std::path::Path;
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KINESIN_REVISION");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KINESIN_RUSTC_VERSION={rustc_version}");

    let revision = match std::env::var("KINESIN_REVISION") {
        Ok(r) if !r.is_empty() => r,
        _ => output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into()),
    };
    // A label value: keep it to characters that need no escaping.
    let revision: String =
        revision.chars().filter(|c| c.is_ascii_alphanumeric() || "._+-".contains(*c)).take(64).collect();
    let revision = if revision.is_empty() { "unknown".to_string() } else { revision };
    println!("cargo:rustc-env=KINESIN_REVISION={revision}");

    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points to (a commit).
    // Only existing files: cargo reruns a script whose watched file is missing on every build.
    let mut watched = vec![output("git", &["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(output("git", &["rev-parse", "--git-path", &branch]));
        watched.push(output("git", &["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
