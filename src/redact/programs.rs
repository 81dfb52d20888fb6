//! Passwords that only the program gives a meaning to: `mysql -pX` (glued: `-p X` is a
//! database), `sshpass -p X`, `curl -u user:X`, `redis-cli -a X`, `ldapsearch -w X`,
//! `zip -P X`. A one-letter flag means too many things to be taken for a password by itself,
//! so these are secret only after the program known to read them that way; and, for any
//! program but a container tool (`docker --user 1000:1000`), `--user user:password` and
//! `--proxy-user user:password`.
//!
//! The same rules serve the command line (each argument a word) and text (a script's simple
//! commands: a `bash -c` script, a `deploy.sh`, a quoted command in a config).

use std::ops::Range;

use super::names::{is_harmless, is_secret_name};

/// How a program takes its password after a flag.
#[derive(Clone, Copy)]
enum Takes {
    /// Only glued to the flag: `mysql -pX` (`-p X`: X is the database, the password is asked).
    Glued,
    /// Glued or as the next word: `sshpass -p X`, `sshpass -pX`.
    Value,
    /// `user:password` (glued or next), only the password part: `curl -u bob:X`.
    UserPassword(char),
}

/// (programs, flag, how).
const RULES: &[(&[&str], &str, Takes)] = &[
    (
        &[
            "mysql",
            "mysqldump",
            "mysqladmin",
            "mysqlimport",
            "mysqlcheck",
            "mysqlpump",
            "mysqlshow",
            "mysqlslap",
            "mysqlsh",
            "mariadb",
            "mariadb-dump",
            "mariadb-admin",
            "mariadb-import",
            "mariadb-check",
            "mariadb-show",
            "mariadb-slap",
            "7z",
            "7za",
            "7zr",
            "rar",
            "unrar",
        ],
        "-p",
        Takes::Glued,
    ),
    (&["sshpass"], "-p", Takes::Value),
    (
        &[
            "mongo",
            "mongosh",
            "mongodump",
            "mongorestore",
            "mongoexport",
            "mongoimport",
        ],
        "-p",
        Takes::Value,
    ),
    (&["redis-cli"], "-a", Takes::Value),
    (
        &[
            "ldapsearch",
            "ldapadd",
            "ldapmodify",
            "ldapdelete",
            "ldapwhoami",
            "ldappasswd",
            "ldapcompare",
            "ldapmodrdn",
            "ldapexop",
        ],
        "-w",
        Takes::Value,
    ),
    (
        &["zip", "unzip", "zipcloak", "sqlcmd", "bcp"],
        "-P",
        Takes::Value,
    ),
    (&["curl"], "-u", Takes::UserPassword(':')),
    (&["curl"], "-U", Takes::UserPassword(':')),
    (&["smbclient", "rpcclient"], "-U", Takes::UserPassword('%')),
    (&["lftp"], "-u", Takes::UserPassword(',')),
];

/// Programs whose `login` subcommand takes a password after `-p` (`docker login -p X`; their
/// `-p` elsewhere is a port: `docker run -p 80:80`), and `wandb login KEY`.
const LOGIN_TOOLS: &[&str] = &[
    "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane", "az", "wandb",
];

/// Subcommands that set a named setting to the value after its name, by the word before
/// them: `aws configure set NAME VALUE`, `npm config set NAME VALUE`, `dvc remote modify
/// [--local] REMOTE NAME VALUE`, `git config [--global] NAME VALUE`. After one, a name whose
/// last part is secret makes the next word secret (`aws_secret_access_key X`, `//host/:_authToken X`,
/// `password X`).
const SETTERS: &[(&str, &str)] = &[
    ("configure", "set"),
    ("config", "set"),
    ("remote", "modify"),
    ("remote", "add"),
    ("git", "config"),
    ("config", "add"),
];

/// Every program a rule names, for a quick look before tokenizing a text.
pub fn might_hold(text: &str) -> bool {
    match &*WORDS {
        Some(words) => words.is_match(text),
        None => one_by_one(text),
    }
}

/// The words `might_hold` looks for.
const LOOKED_FOR: &[&str] = &[
    " set ",
    " modify ",
    " config ",
    "--user",
    "--proxy-user",
    "login",
];

/// `LOOKED_FOR` and every program a rule names, searched for in one pass, not one by one
/// (a config of two million short values spent a tenth of its redaction here). None only
/// if the automaton could not be built.
static WORDS: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
    std::sync::LazyLock::new(|| {
        let programs = RULES.iter().flat_map(|(programs, _, _)| programs.iter());
        crate::redact::text::literals(LOOKED_FOR.iter().chain(programs))
    });

fn one_by_one(text: &str) -> bool {
    LOOKED_FOR.iter().any(|w| text.contains(w))
        || RULES
            .iter()
            .flat_map(|(programs, _, _)| programs.iter())
            .any(|p| text.contains(p))
}

/// Long flags whose `user:password` value is a credential whatever the program.
const USER_FLAGS: &[&str] = &["--user", "--proxy-user"];

/// Programs whose `--user` is `uid:gid` or `user:group`, no password.
const CONTAINER_TOOLS: &[&str] = &[
    "docker",
    "podman",
    "nerdctl",
    "buildah",
    "singularity",
    "apptainer",
    "runc",
    "crun",
    "enroot",
    "kubectl",
    "systemd-run",
];

/// Commands that run the command after them (`sudo mysql -pX`, `env X=1 sshpass -p X`).
const WRAPPERS: &[&str] = &[
    "sudo", "doas", "env", "exec", "command", "nohup", "time", "nice", "ionice", "timeout",
    "stdbuf", "chrt", "taskset", "numactl", "xargs", "watch", "srun", "unbuffer", "then", "do",
    "else", "if", "while", "until", "!",
];

fn program_of(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// A word that may stand before a command's program: an option, `VAR=value`, a key
/// (`run:`, `cmd=`), a number, a prompt (`$`, `>`).
fn may_lead(word: &str) -> bool {
    word.starts_with('-')
        || word.ends_with([':', '='])
        || word.split('/').next().is_some_and(|w| w.contains('='))
        || !word.bytes().any(|b| b.is_ascii_alphabetic())
}

/// In the words of one command, what is a password: (the word's index, the byte range of it).
pub fn secrets<S: AsRef<str>>(words: &[S]) -> Vec<(usize, Range<usize>)> {
    let mut out = Vec::new();
    let mut program: Option<&str> = None;
    // Whether the word at hand may be the program: the first word, or one after only options,
    // assignments, keys and numbers, or any word after a wrapper (`sudo -u root mysql`).
    let (mut leading, mut wrapped, mut login) = (true, false, false);
    // Whether a setter subcommand (`config set`) was seen: a secret name's next word is secret.
    let mut setting = false;
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_ref();
        let name = program_of(word);
        let next = words.get(i + 1).map(AsRef::as_ref);
        if i > 0 && SETTERS.contains(&(program_of(words[i - 1].as_ref()), word)) {
            setting = true;
        } else if setting
            && !word.starts_with('-')
            // By its last part: `credential.helper store` sets no secret.
            && is_secret_name(word.rsplit(['.', '/', ':']).next().unwrap_or(word))
            && let Some(n) = next.filter(|n| !n.starts_with('-') && !is_harmless(n))
        {
            out.push((i + 1, 0..n.len()));
            i += 2;
            continue;
        }
        if program.is_none() && (leading || wrapped) {
            if RULES.iter().any(|(ps, _, _)| ps.contains(&name))
                || CONTAINER_TOOLS.contains(&name)
                || LOGIN_TOOLS.contains(&name)
            {
                program = Some(name);
                i += 1;
                continue;
            }
            if WRAPPERS.contains(&name) {
                wrapped = true;
                i += 1;
                continue;
            }
        }
        leading = leading && may_lead(word);
        let mut take_next = false;
        if let Some(p) = program.filter(|p| LOGIN_TOOLS.contains(p)) {
            if word == "login" {
                login = true;
            } else if login && p == "wandb" {
                // `wandb login [--relogin] KEY`: the first word that is no option.
                if !word.starts_with('-') && !is_harmless(word) {
                    out.push((i, 0..word.len()));
                }
            } else if login && let Some(glued) = word.strip_prefix("-p") {
                let glued = glued.strip_prefix('=').unwrap_or(glued);
                if !glued.is_empty() && !is_harmless(glued) {
                    out.push((i, word.len() - glued.len()..word.len()));
                } else if glued.is_empty()
                    && let Some(n) = next.filter(|n| !n.starts_with('-') && !is_harmless(n))
                {
                    out.push((i + 1, 0..n.len()));
                    take_next = true;
                }
            }
        }
        for (programs, flag, takes) in RULES {
            if !program.is_some_and(|p| programs.contains(&p)) {
                continue;
            }
            let Some(glued) = word.strip_prefix(flag) else {
                continue;
            };
            let at = flag.len();
            match takes {
                Takes::Glued | Takes::Value if !glued.is_empty() => {
                    if !is_harmless(glued) {
                        out.push((i, at..word.len()));
                    }
                }
                Takes::Value => {
                    if let Some(n) = next.filter(|n| !n.starts_with('-') && !is_harmless(n)) {
                        out.push((i + 1, 0..n.len()));
                        take_next = true;
                    }
                }
                Takes::UserPassword(sep) if !glued.is_empty() => {
                    if let Some(r) = password_part(glued, *sep) {
                        out.push((i, at + r.start..at + r.end));
                    }
                }
                Takes::UserPassword(sep) => {
                    if let Some(r) = next.and_then(|n| password_part(n, *sep)) {
                        out.push((i + 1, r));
                        take_next = true;
                    }
                }
                Takes::Glued => {}
            }
        }
        if !program.is_some_and(|p| CONTAINER_TOOLS.contains(&p)) {
            for flag in USER_FLAGS {
                if word == *flag {
                    if let Some(r) = next.and_then(|n| password_part(n, ':')) {
                        out.push((i + 1, r));
                        take_next = true;
                    }
                } else if let Some(value) = word
                    .strip_prefix(flag)
                    .and_then(|rest| rest.strip_prefix('='))
                    && let Some(r) = password_part(value, ':')
                {
                    let at = flag.len() + 1;
                    out.push((i, at + r.start..at + r.end));
                }
            }
        }
        i += if take_next { 2 } else { 1 };
    }
    out
}

/// The password of `user:password` (`user%password`): not empty, not a number (`1000:1000` is
/// a uid and a gid), not a variable reference.
fn password_part(value: &str, sep: char) -> Option<Range<usize>> {
    let at = value.find(sep)?;
    let pw = &value[at + 1..];
    let user = &value[..at];
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if pw.is_empty() || numeric(pw) || user.is_empty() || is_harmless(pw) {
        return None;
    }
    Some(at + 1..value.len())
}

/// A text with the passwords of the commands in it redacted: the text is read as shell
/// (words split by blanks, commands by `;`, `&`, `|`, `(`, `)`, a backquote and line ends,
/// quotes kept together), and a quoted word with a blank in it is read as a script too
/// (`sh -c 'mysql -pX'`, `cmd: "curl -u u:X"`).
pub fn redact(text: &str) -> String {
    if !might_hold(text) {
        return text.to_string();
    }
    let mut ranges = Vec::new();
    scan(text, 0, 0, &mut ranges);
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in ranges {
        if r.start < last {
            continue;
        }
        out.push_str(&text[last..r.start]);
        out.push_str(super::REDACTED);
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// A word of a script: where it stands, and where its content does (inside its quotes when it
/// is quoted whole).
struct Word {
    content: Range<usize>,
    quoted: bool,
}

/// How deep quoted scripts are read as scripts (`sh -c "ssh h 'mysql -pX'"` is two).
const MAX_DEPTH: usize = 4;

fn scan(text: &str, base: usize, depth: usize, ranges: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let mut command: Vec<Word> = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    let flush = |command: &mut Vec<Word>, ranges: &mut Vec<Range<usize>>| {
        let words: Vec<&str> = command.iter().map(|w| &text[w.content.clone()]).collect();
        for (n, r) in secrets(&words) {
            let c = &command[n].content;
            ranges.push(base + c.start + r.start..base + c.start + r.end);
        }
        for w in command.iter().filter(|w| w.quoted) {
            let inner = &text[w.content.clone()];
            if depth < MAX_DEPTH && inner.contains([' ', '\t', '\n']) {
                scan(inner, base + w.content.start, depth + 1, ranges);
            }
        }
        command.clear();
    };
    let end_word = |command: &mut Vec<Word>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            let raw = &text[s..end];
            let quoted = raw.len() >= 2
                && ((raw.starts_with('"') && raw.ends_with('"'))
                    || (raw.starts_with('\'') && raw.ends_with('\'')));
            let content = if quoted { s + 1..end - 1 } else { s..end };
            command.push(Word { content, quoted });
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' => {
                end_word(&mut command, &mut start, i);
                i += 1;
            }
            b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'`' => {
                end_word(&mut command, &mut start, i);
                flush(&mut command, ranges);
                i += 1;
            }
            q @ (b'"' | b'\'') => {
                let close = if q == b'"' {
                    super::text::string_end(bytes, i)
                } else {
                    text[i + 1..].find('\'').map(|n| i + n + 2)
                };
                match close {
                    Some(end) => {
                        start.get_or_insert(i);
                        i = end;
                    }
                    // An open quote: what follows is no command of this text's.
                    None => {
                        end_word(&mut command, &mut start, i);
                        flush(&mut command, ranges);
                        i += 1;
                    }
                }
            }
            b'\\' => {
                start.get_or_insert(i);
                i += 2;
            }
            _ => {
                start.get_or_insert(i);
                i += 1;
            }
        }
    }
    end_word(&mut command, &mut start, bytes.len().min(i));
    flush(&mut command, ranges);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_found_at_once_as_one_by_one() {
        assert!(WORDS.is_some());
        let mut texts = vec![String::new(), "tok123".to_string(), "lr: 0.01".to_string()];
        let programs = RULES.iter().flat_map(|(programs, _, _)| programs.iter());
        for w in LOOKED_FOR.iter().chain(programs) {
            texts.push((*w).to_string());
            texts.push(format!("run {w} -x"));
            texts.push(w[..w.len() - 1].to_string());
            texts.push(w[1..].to_string());
        }
        for text in &texts {
            assert_eq!(might_hold(text), one_by_one(text), "{text:?}");
        }
        assert!(might_hold("mysql -u root -psecret"));
        assert!(!might_hold("python train.py"));
    }

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    fn hidden(cmd: &str) -> Vec<String> {
        let w = words(cmd);
        secrets(&w)
            .into_iter()
            .map(|(i, r)| w[i][r].to_string())
            .collect()
    }

    #[test]
    fn by_the_program_that_reads_them() {
        assert_eq!(hidden("mysql -pS3cret -h db"), ["S3cret"]);
        assert_eq!(hidden("/usr/bin/mysqldump -uroot -pS3cret db"), ["S3cret"]);
        // `mysql -p db`: the password is asked, `db` is the database.
        assert!(hidden("mysql -p db").is_empty());
        assert_eq!(hidden("sshpass -p S3cret ssh h"), ["S3cret"]);
        assert_eq!(hidden("sshpass -pS3cret ssh h"), ["S3cret"]);
        assert_eq!(hidden("curl -u bob:S3cret http://x"), ["S3cret"]);
        assert_eq!(hidden("curl -ubob:S3cret http://x"), ["S3cret"]);
        assert_eq!(hidden("curl --user bob:S3cret http://x"), ["S3cret"]);
        assert_eq!(hidden("redis-cli -a S3cret ping"), ["S3cret"]);
        assert_eq!(hidden("ldapsearch -x -w S3cret"), ["S3cret"]);
        assert_eq!(hidden("smbclient -U bob%S3cret //h/s"), ["S3cret"]);
        assert_eq!(hidden("x --user admin:S3cret"), ["S3cret"]);
        assert_eq!(hidden("x --user=admin:S3cret"), ["S3cret"]);
        assert_eq!(hidden("sudo -u root mysql -pS3cret"), ["S3cret"]);
        assert_eq!(hidden("$ MYSQL_HOST=h mysql -pS3cret"), ["S3cret"]);
        assert_eq!(hidden("run: mysql -pS3cret"), ["S3cret"]);
        assert_eq!(hidden("docker login -u bob -p S3cret reg.io"), ["S3cret"]);
        assert_eq!(hidden("docker login -pS3cret"), ["S3cret"]);
        assert_eq!(hidden("wandb login --relogin S3cret"), ["S3cret"]);
        assert_eq!(hidden("lftp -u bob,S3cret h"), ["S3cret"]);
        // Not a password: another program's `-p`, a user alone, a uid:gid, a container's user.
        for clear in [
            "python train.py -p 8 -u 3",
            "ssh -p 2222 host",
            "curl -u bob http://x",
            "x --user 1000:1000",
            "docker run --user app:staff img",
            "x --user bob",
            "curl -u bob:${PASS} http://x",
            // A program's name as another program's argument is not that program.
            "python run.py --db mysql -p5432",
            "docker run -p 8080:80 img",
            "sshpass -p $SSHPASS ssh h",
            "mysql -p${MYSQL_PWD} db",
            "wandb login",
        ] {
            assert!(hidden(clear).is_empty(), "{clear}");
        }
    }

    #[test]
    fn scripts_are_read_as_commands() {
        assert_eq!(
            redact("curl -u bob:pw1 -H 'x: y' http://x/; mysql -ppw2; sshpass -p pw3 true"),
            "curl -u bob:[REDACTED] -H 'x: y' http://x/; mysql -p[REDACTED]; sshpass -p [REDACTED] true"
        );
        assert_eq!(
            redact("run: \"mysql -pS3cret db\""),
            "run: \"mysql -p[REDACTED] db\""
        );
        assert_eq!(
            redact("sh -c 'sshpass -p \"a b\" ssh h'"),
            "sh -c 'sshpass -p \"[REDACTED]\" ssh h'"
        );
        let clear = "mysql -p db\nssh -p 22 h\n--user 1000:1000\n";
        assert_eq!(redact(clear), clear);
    }
}
