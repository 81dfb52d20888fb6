//! Software: for Python jobs, the interpreter and the distributions installed in its
//! environment, read from `site-packages/*.dist-info` directory names (no `pip freeze`
//! subprocess); and the hashes of lock files at the project root.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::hash;
use crate::model::{FileRef, Hash, Python};

/// Lock files looked for at the project root.
const LOCKFILES: &[&str] = &[
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "Cargo.lock",
    "pdm.lock",
];

/// Hashes of the lock files in `root` (and `requirements*.txt`).
pub fn lockfiles(root: &Path) -> Vec<FileRef> {
    let mut names: Vec<String> = LOCKFILES.iter().map(|s| s.to_string()).collect();
    if let Ok(dir) = std::fs::read_dir(root) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("requirements") && name.ends_with(".txt") {
                names.push(name);
            }
        }
    }
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let path = root.join(&name);
            if !path.is_file() {
                return None;
            }
            let (hash, _) = hash::hash_file(&path).ok()?;
            Some(FileRef { path: name, hash })
        })
        .collect()
}

/// The Python interpreter a command runs, if it runs one: `python3 train.py`, a venv's
/// `bin/python`, or a script whose shebang names Python (`torchrun`, `accelerate`).
pub fn python_interpreter(
    program: &OsStr,
    path_var: Option<&OsStr>,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let resolved = resolve_program(program, path_var)?;
    if is_python_name(resolved.file_name()?) {
        return Some(pyenv_shim_target(&resolved, cwd, env).unwrap_or(resolved));
    }
    // A script: read its shebang without reading the file.
    let head = read_head(&resolved, 256)?;
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n').unwrap_or(line.len())];
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let interp = if first.ends_with("/env") {
        let name = words.find(|w| !w.starts_with('-'))?;
        resolve_program(OsStr::new(name), path_var)?
    } else {
        PathBuf::from(first)
    };
    is_python_name(interp.file_name()?).then_some(interp)
}

/// A pyenv shim (`$PYENV_ROOT/shims/python3`, a shell script) runs the interpreter of the
/// selected version: PYENV_VERSION, else the nearest `.python-version` from the cwd up, else
/// `$PYENV_ROOT/version`. Resolve it the same way, without running pyenv.
fn pyenv_shim_target(
    shim: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let shims = shim.parent()?;
    if shims.file_name()? != "shims" {
        return None;
    }
    let root = shims.parent()?;
    let first_word = |text: String| text.split_whitespace().next().map(str::to_string);
    let version = env("PYENV_VERSION")
        .and_then(|v| v.split(':').next().map(str::to_string))
        .filter(|v| !v.is_empty())
        .or_else(|| {
            cwd.ancestors()
                .find_map(|d| std::fs::read_to_string(d.join(".python-version")).ok())
                .and_then(first_word)
        })
        .or_else(|| {
            std::fs::read_to_string(root.join("version"))
                .ok()
                .and_then(first_word)
        })?;
    let target = root
        .join("versions")
        .join(version)
        .join("bin")
        .join(shim.file_name()?);
    target.is_file().then_some(target)
}

fn is_python_name(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(b"python") && name[6..].iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

fn read_head(path: &Path, n: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; n];
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.read(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// Find a program as execvp would: a path with `/` as is, otherwise on PATH.
pub fn resolve_program(program: &OsStr, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The interpreter's version and installed distributions; the listing becomes a blob.
pub fn python(interpreter: &Path) -> (Python, Option<(Hash, Vec<u8>)>) {
    let bin = interpreter.parent().unwrap_or(Path::new("/"));
    let mut prefix = bin.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut version = None;
    // A virtual environment's own prefix holds pyvenv.cfg; otherwise follow symlinks to the
    // real interpreter's prefix.
    if let Ok(cfg) = std::fs::read_to_string(prefix.join("pyvenv.cfg")) {
        version = cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
        });
    } else if let Ok(real) = std::fs::canonicalize(interpreter)
        && let Some(p) = real.parent().and_then(Path::parent)
    {
        prefix = p.to_path_buf();
    }
    let mut site_packages = Vec::new();
    if let Ok(lib) = std::fs::read_dir(prefix.join("lib")) {
        let mut dirs: Vec<_> = lib.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
            let Some(name) = name.filter(|n| n.starts_with("python")) else {
                continue;
            };
            if version.is_none() && name.len() > 6 && name != "python3" {
                version = Some(name[6..].to_string());
            }
            for sub in ["site-packages", "dist-packages"] {
                if d.join(sub).is_dir() {
                    site_packages.push(d.join(sub));
                }
            }
        }
    }
    let mut packages: Vec<String> = site_packages
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|dir| dir.flatten())
        .filter_map(|e| distribution(&e.file_name().to_string_lossy()))
        .collect();
    packages.sort();
    packages.dedup();
    let blob = (!packages.is_empty()).then(|| {
        let text = packages.join("\n") + "\n";
        (Hash::of(text.as_bytes()), text.into_bytes())
    });
    let python = Python {
        executable: interpreter.display().to_string(),
        version,
        site_packages: site_packages
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        packages: blob.as_ref().map(|(h, _)| *h),
        package_count: packages.len(),
    };
    (python, blob)
}

/// `numpy-1.26.4.dist-info` -> `numpy==1.26.4` (names normalised as PEP 503 says).
fn distribution(dir_name: &str) -> Option<String> {
    let stem = dir_name
        .strip_suffix(".dist-info")
        .or_else(|| dir_name.strip_suffix(".egg-info"))?;
    let (name, version) = stem.split_once('-')?;
    let version = version.split('-').next()?;
    let name = name.to_ascii_lowercase().replace(['_', '.'], "-");
    Some(format!("{name}=={version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_names() {
        assert_eq!(
            distribution("numpy-1.26.4.dist-info").as_deref(),
            Some("numpy==1.26.4")
        );
        assert_eq!(
            distribution("Typing_Extensions-4.9.0.dist-info").as_deref(),
            Some("typing-extensions==4.9.0")
        );
        assert_eq!(
            distribution("six-1.16.0-py3.11.egg-info").as_deref(),
            Some("six==1.16.0")
        );
        assert_eq!(distribution("numpy"), None);
    }

    #[test]
    fn python_names() {
        for (name, want) in [
            ("python", true),
            ("python3", true),
            ("python3.11", true),
            ("python-config", false),
            ("pythonw", false),
            ("sh", false),
        ] {
            assert_eq!(is_python_name(OsStr::new(name)), want, "{name}");
        }
    }

    #[test]
    fn a_pyenv_shim_resolves_to_the_selected_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join(".pyenv");
        std::fs::create_dir_all(root.join("shims")).expect("mkdir");
        std::fs::create_dir_all(root.join("versions/3.11.7/bin")).expect("mkdir");
        std::fs::create_dir_all(root.join("versions/3.12.1/bin")).expect("mkdir");
        std::fs::write(root.join("shims/python3"), "#!/usr/bin/env bash\n").expect("write");
        std::fs::write(root.join("versions/3.11.7/bin/python3"), "").expect("write");
        std::fs::write(root.join("versions/3.12.1/bin/python3"), "").expect("write");
        std::fs::write(root.join("version"), "3.11.7\n").expect("write");
        let project = dir.path().join("project/sub");
        std::fs::create_dir_all(&project).expect("mkdir");
        let shim = root.join("shims/python3");
        let none = |_: &str| None;
        assert_eq!(
            pyenv_shim_target(&shim, &project, &none),
            Some(root.join("versions/3.11.7/bin/python3"))
        );
        std::fs::write(dir.path().join("project/.python-version"), "3.12.1\n").expect("write");
        assert_eq!(
            pyenv_shim_target(&shim, &project, &none),
            Some(root.join("versions/3.12.1/bin/python3"))
        );
        let pinned = |k: &str| (k == "PYENV_VERSION").then(|| "3.11.7".to_string());
        assert_eq!(
            pyenv_shim_target(&shim, &project, &pinned),
            Some(root.join("versions/3.11.7/bin/python3"))
        );
    }

    #[test]
    fn a_venv_is_read_from_dist_info_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let venv = dir.path();
        std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
        let site = venv.join("lib/python3.12/site-packages");
        std::fs::create_dir_all(site.join("torch-2.5.1.dist-info")).expect("mkdir");
        std::fs::create_dir_all(site.join("numpy-2.1.0.dist-info")).expect("mkdir");
        std::fs::create_dir_all(site.join("numpy")).expect("mkdir");
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 3.12.7\n",
        )
        .expect("write");
        std::fs::write(venv.join("bin/python"), "").expect("write");
        let (py, blob) = python(&venv.join("bin/python"));
        assert_eq!(py.version.as_deref(), Some("3.12.7"));
        assert_eq!(py.package_count, 2);
        let (_, bytes) = blob.expect("blob");
        assert_eq!(bytes, b"numpy==2.1.0\ntorch==2.5.1\n");
    }
}
