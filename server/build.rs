//! Embeds the built dashboard (`web/dist`, made by `npm run build` in `web/`) into the hub. When
//! it has not been built, the hub embeds `src/web_placeholder.html`, which says how to build it.
use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    let web = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../web");
    println!("cargo:rerun-if-env-changed=FAULTLINE_WEB_DIST");
    let dist = env::var_os("FAULTLINE_WEB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| web.join("dist"));
    // Cargo takes a missing path as changed on every build, which would compile the hub again
    // each time: until the dashboard is built, the directory it will appear in is watched.
    let watched = match dist.parent() {
        Some(parent) if !dist.exists() => parent,
        _ => &dist,
    };
    println!("cargo:rerun-if-changed={}", watched.display());
    let mut files = Vec::new();
    let built = dist.join("index.html").is_file();
    if built {
        collect(&dist, &dist, &mut files);
    } else {
        let placeholder = Path::new("src/web_placeholder.html");
        println!("cargo:rerun-if-changed={}", placeholder.display());
        files.push(("index.html".to_string(), placeholder.to_path_buf()));
    }
    files.sort();
    let mut out = String::from("/// The dashboard's files: path under the site root, contents.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let abs = abs.canonicalize().unwrap_or_else(|_| abs.clone());
        out.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    out.push_str(&format!(
        "/// Whether the real dashboard was built (else a placeholder page).\npub const BUILT: bool = {};\n",
        built
    ));
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("web_assets.rs"),
        out,
    )
    .unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, files);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            // Vite's manifest and source maps stay out of the binary.
            if !rel.starts_with(".vite/") && !rel.ends_with(".map") {
                files.push((rel, p.clone()));
            }
        }
    }
}
