//! What a name means: whether a key, a variable, a flag or a path of keys names a secret.
//!
//! A name is split into words (`_`, `-`, `.`, spaces and camelCase boundaries) and judged by
//! its words, never by a substring: `api_key`, `HF_TOKEN`, `db.password`, `MYSQL_PWD` and
//! `auth` are secret; `pad_token_id`, `max_new_tokens`, `author`, `auth_free`, `key_dim` and
//! `num_key_value_heads` are not.

/// Words that make a name secret wherever they stand (`client_secret`, `passwords`). They are
/// also looked for inside one-word names (`PGPASSWORD`, `apiKey` lower-cased as `apikey`).
const ALWAYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "secret",
    "credential",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "bearertoken",
    "cookie",
];

/// The plural and short forms that count as those words when they are a whole word.
const ALWAYS_WORDS: &[&str] = &["creds", "authorization", "passwords", "secrets"];

/// One-word names of a password that `pass` alone would not say (`PGPASS`, `DBPASS`):
/// `pass` inside a word is too common (`bypass`, `compass`, `multipass`) to look for.
const PASS_NAMES: &[&str] = &[
    "pgpass",
    "dbpass",
    "mysqlpass",
    "redispass",
    "smtppass",
    "ldappass",
    "ftppass",
    "adminpass",
    "rootpass",
    "userpass",
    "mypass",
    "sudopass",
    "sshpass",
    "passin",
    "passout",
];

/// A last word that names a property of the secret rather than the secret itself:
/// `password_file`, `token_id`, `secret_name`, `password_min_length`.
const METADATA: &[&str] = &[
    "id",
    "ids",
    "name",
    "names",
    "path",
    "paths",
    "file",
    "files",
    "dir",
    "len",
    "length",
    "size",
    "count",
    "type",
    "types",
    "mode",
    "env",
    "var",
    "field",
    "fields",
    "url",
    "uri",
    "endpoint",
    "host",
    "port",
    "user",
    "username",
    "format",
    "policy",
    "ttl",
    "timeout",
    "expiry",
    "expires",
    "expiration",
    "header",
    "location",
    "version",
    "provider",
    "scope",
    "scopes",
    "budget",
    "limit",
    "enabled",
    "required",
    "index",
];

/// Words before `token` that make it a tokenizer's token, not a credential: `pad_token`,
/// `eos_token`, `decoder_start_token`.
const TOKENIZER: &[&str] = &[
    "pad",
    "eos",
    "bos",
    "unk",
    "mask",
    "sep",
    "cls",
    "special",
    "start",
    "end",
    "stop",
    "eot",
    "eom",
    "boi",
    "eoi",
    "sos",
    "image",
    "audio",
    "video",
    "vision",
    "decoder",
    "encoder",
    "begin",
    "think",
    "tool",
    "placeholder",
    "fim",
    "prefix",
    "suffix",
    "middle",
    "additional",
    "extra",
    "unknown",
    "padding",
    "separator",
    "classifier",
    "default",
    "max",
    "min",
    "num",
    "new",
    "total",
    "init",
    "first",
    "last",
    "next",
    "prev",
    "sentence",
    "word",
    "sub",
    "eod",
    "pretokenize",
    // Chat templates' and retrieval models' markers: `response_token`, `start_of_turn_token`,
    // `tool_call_token`, `query_token`, `ignore_token` (a label's ignore index).
    "response",
    "turn",
    "system",
    "user",
    "assistant",
    "human",
    "query",
    "ignore",
    "call",
    "prompt",
    "instruction",
    "answer",
    "question",
    "role",
    "chat",
    "doc",
    "nl",
    "ctrl",
    "label",
    "pause",
    "func",
    "function",
    "quad",
    "ref",
    "box",
    "reasoning",
    "im",
];

/// Words after a secret word that still name the secret itself (its variant, its
/// environment, its encoding), not a property of it: `HF_TOKEN_WRITE`, `GITHUB_TOKEN_RO`,
/// `OPENAI_API_KEY_PROD`, `PRIVATE_KEY_BASE64`. Vendors (`TOKEN_GITHUB`, `KEY_OPENAI`) count
/// too: the credential words' qualifiers.
const SUFFIXES: &[&str] = &[
    "write",
    "read",
    "readonly",
    "ro",
    "rw",
    "prod",
    "production",
    "dev",
    "development",
    "staging",
    "stage",
    "test",
    "ci",
    "team",
    "org",
    "personal",
    "admin",
    "local",
    "base64",
    "b64",
    "hex",
    "pem",
    "raw",
    "encoded",
    "value",
    "primary",
    "secondary",
    "backup",
];

/// Words before `key` or `keys` that make it a credential: `api_key`, `ssh_key`,
/// `WANDB_API_KEY`; `sort_key`, `cache_key` and `key_dim` are not.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "sign",
    "encryption",
    "encrypt",
    "decryption",
    "master",
    "license",
    "licence",
    "client",
    "ssh",
    "app",
    "auth",
    "account",
    "storage",
    "subscription",
    "service",
    "consumer",
    "shared",
    "deploy",
    "admin",
    "root",
    "session",
    "gpg",
    "pgp",
    "hmac",
    "jwt",
    "crypto",
    "ingest",
    "write",
    "openai",
    "wandb",
    "hf",
    "anthropic",
    "cohere",
    "comet",
    "neptune",
    "pinecone",
    "stripe",
    "aws",
    "gcp",
    "azure",
    "google",
    // `google_maps_key`, `MAPS_KEY`: a Maps platform key.
    "maps",
    "mistral",
    "groq",
    "replicate",
    "serpapi",
    "tavily",
    "huggingface",
    "sas",
    "pass",
    "kaggle",
    "sentry",
    "datadog",
    "dd",
    "github",
    "gh",
    "gitlab",
    "slack",
    "discord",
    "telegram",
    "twilio",
    "sendgrid",
    "mailgun",
    "algolia",
    "mapbox",
    "firebase",
    "supabase",
    "together",
    "fireworks",
    "perplexity",
    "deepseek",
    "voyage",
    "jina",
    "langchain",
    "langsmith",
    "clearml",
    "roboflow",
    "ngc",
    "modal",
    "runpod",
    "gemini",
    "xai",
    "elevenlabs",
    "assemblyai",
    "deepgram",
    "dropbox",
    "notion",
];

/// Words before `pass` that make it a count or a stage, not a password: `num_pass`.
const PASS_NOT: &[&str] = &[
    "num", "n", "max", "min", "multi", "two", "single", "first", "second", "forward", "backward",
    "one", "each", "per", "by", "final", "last",
];

/// The words of a name, lower-case: `_ - . /` and spaces separate, and so does a camelCase
/// boundary (`padTokenId` -> pad, token, id; `HFToken` -> hf, token).
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How a name is secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Secrecy {
    /// Not secret.
    Clear,
    /// Secret by a short word that also means other things: `auth`, `pass`, `pwd`
    /// (`MY_AUTH`, `DB_PASS`, `MYSQL_PWD`).
    Weak,
    /// Secret by a word that says nothing else: `password`, `secret`, `credential`,
    /// `passphrase`, a credential `token`, `api_key`, `cookie`, `authorization`.
    Strong,
}

/// Whether one name (a variable, a key, a flag without its dashes) names a secret.
pub fn is_secret_name(name: &str) -> bool {
    secrecy(name) != Secrecy::Clear
}

/// How one name is secret. A trailing number is no word of its own (`OPENAI_KEY_2`,
/// `HF_TOKEN_1` are judged as `OPENAI_KEY`, `HF_TOKEN`).
///
/// Remembered per thread, up to 16,384 names (then forgotten all at once): a config's keys
/// repeat their parts (`layers.0.lr`, `layers.1.lr`, ...), and splitting a name into its
/// words allocates. A config of a million values was judged part by part in 3 s of a 7 s
/// launch delay.
pub fn secrecy(name: &str) -> Secrecy {
    /// Names longer than this are judged each time (they rarely repeat).
    const LONGEST: usize = 64;
    /// Past this many names the memory is emptied, so it never grows without bound.
    const MOST: usize = 16_384;
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashMap<Box<str>, Secrecy>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    // A list's index (`layers.1234`): no word at all, and each one new.
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Secrecy::Clear;
    }
    if name.len() > LONGEST {
        return judged(name);
    }
    SEEN.with(|seen| {
        if let Some(s) = seen.borrow().get(name) {
            return *s;
        }
        let s = judged(name);
        let mut seen = seen.borrow_mut();
        if seen.len() >= MOST {
            seen.clear();
        }
        seen.insert(name.into(), s);
        s
    })
}

/// [`secrecy`], judged anew.
fn judged(name: &str) -> Secrecy {
    let mut words = words(name);
    while words.len() > 1
        && words
            .last()
            .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()))
    {
        words.pop();
    }
    let Some(last) = words.last() else {
        return Secrecy::Clear;
    };
    if METADATA.contains(&last.as_str()) || words[0] == "no" {
        return Secrecy::Clear;
    }
    let prev = words.len().checked_sub(2).map(|i| words[i].as_str());
    for w in &words {
        if ALWAYS_WORDS.contains(&w.as_str())
            || PASS_NAMES.contains(&w.as_str())
            || ALWAYS.iter().any(|a| w.contains(a))
        {
            return Secrecy::Strong;
        }
    }
    let strong = |yes: bool| if yes { Secrecy::Strong } else { Secrecy::Clear };
    let by_last = match last.as_str() {
        "token" => strong(!is_tokenizer_token(&words, words.len() - 1)),
        "key" | "keys" => strong(prev.is_some_and(|p| KEY_QUALIFIERS.contains(&p))),
        // `passkey`, `DB_PASSKEY`; `passkey_depth` (a retrieval benchmark's) is no secret.
        w if w.contains("passkey") => Secrecy::Strong,
        // `GH_PAT`, `GITLAB_PAT`: a personal access token.
        "pat" => strong(prev.is_some_and(|p| KEY_QUALIFIERS.contains(&p))),
        // `pass_phrase`, `pass_word`, `pass_code`: the one-word forms spelt apart.
        "phrase" | "word" | "code" if prev == Some("pass") => Secrecy::Strong,
        "auth" | "pass" if !prev.is_some_and(|p| PASS_NOT.contains(&p)) => Secrecy::Weak,
        "pwd" | "pw" if words.len() > 1 => Secrecy::Weak,
        _ => Secrecy::Clear,
    };
    if by_last != Secrecy::Clear {
        return by_last;
    }
    // A credential word before the last: `HF_TOKEN_WRITE`, `TOKEN_GITHUB`,
    // `OPENAI_API_KEY_PROD`, `KEY_OPENAI`; not `token_dropout`, `key_dim`, `token_type_ids`.
    let suffix =
        |w: &String| SUFFIXES.contains(&w.as_str()) || KEY_QUALIFIERS.contains(&w.as_str());
    for i in 0..words.len() - 1 {
        let before = i.checked_sub(1).map(|b| words[b].as_str());
        let after = &words[i + 1..];
        let secret = match words[i].as_str() {
            "token" => !is_tokenizer_token(&words, i) && after.iter().all(suffix),
            "key" | "keys" => match before {
                Some("pass") => false,
                Some(b) => KEY_QUALIFIERS.contains(&b),
                None => after.iter().all(suffix),
            },
            _ => false,
        };
        if secret {
            return Secrecy::Strong;
        }
    }
    Secrecy::Clear
}

/// Whether the `token` at `at` is a tokenizer's (`pad_token`, `start_of_turn_token`): the
/// word before it is a tokenizer's, and no credential's qualifier stands before that
/// (`SLACK_USER_TOKEN` is a credential, `user_token` a chat template's marker).
fn is_tokenizer_token(words: &[String], at: usize) -> bool {
    at > 0
        && TOKENIZER.contains(&words[at - 1].as_str())
        && !words[..at - 1]
            .iter()
            .any(|w| KEY_QUALIFIERS.contains(&w.as_str()))
}

/// Whether a path of keys names a secret: any of its parts does (`auth.pass`,
/// `passwords.0`, `secrets.db`, Hydra's `+db.password`, `--hf-token`), or the whole path
/// read as one name (`api.key`, Hadoop's `fs.s3a.access.key`: a qualifier in one part, the
/// `key` in the next).
pub fn is_secret_path(path: &str) -> bool {
    path_secrecy(path) != Secrecy::Clear
}

/// How a path of keys is secret: as its most secret part, or as the whole path read as one
/// name (its words are its parts' words in order), whichever is more.
pub fn path_secrecy(path: &str) -> Secrecy {
    let path = path.trim_start_matches(['-', '+', '~', '$']);
    let parts = path
        .split(['.', '/', ':'])
        .filter(|part| !part.is_empty())
        .map(secrecy)
        .max()
        .unwrap_or(Secrecy::Clear);
    // Read whole only where a qualifier's part stands right before a part `key` that ends
    // the path (`api.key`, `fs.s3a.access.key`), or, in Azure's
    // `fs.azure.account.key.<account>...`, after `account`: `storage.key_prefix` and
    // `account.key_vault` stay as their parts say.
    let split: Vec<&str> = path
        .split(['.', '/', ':'])
        .filter(|p| !p.is_empty())
        .collect();
    // A part that is the word `key` alone holds those letters (the common case, a part
    // without them, is told without splitting it into words); `words` lowercases by
    // Unicode, so a part with any non-ASCII letter is split all the same.
    let may_be_key = |p: &str| {
        !p.is_ascii()
            || p.as_bytes()
                .windows(3)
                .any(|w| w.eq_ignore_ascii_case(b"key"))
    };
    let is_key =
        |p: &str| may_be_key(p) && matches!(words(p).as_slice(), [w] if w == "key" || w == "keys");
    let whole = split.len() > 1
        && (split.last().is_some_and(|p| is_key(p))
            || split
                .windows(2)
                .any(|w| is_key(w[1]) && w[0].eq_ignore_ascii_case("account")));
    match whole {
        true => parts.max(secrecy(path)),
        false => parts,
    }
}

/// A value that carries no secret under this key path: a harmless value, or a small count
/// (one or two digits) under a name secret only by a weak word, `pass: 1`, `--eval_pass 2`,
/// ffmpeg's `-pass 1` (a pass of an encoder, not a password).
/// Under a name secret only as a `token` (`label_token`, `<x>_token`), a special token's
/// marker (`<|im_start|>`, `</s>`, `[Q]`) is none either: a tokenizer's setting.
pub fn is_harmless_under(path: &str, value: &str) -> bool {
    if is_harmless(value) {
        return true;
    }
    let secrecy = path_secrecy(path);
    (secrecy == Secrecy::Weak && is_small_count(value))
        || (secrecy == Secrecy::Strong && secret_only_as_token(path) && is_token_marker(value))
}

/// Whether the path is secret by its last part alone, and that only by a last word `token`.
fn secret_only_as_token(path: &str) -> bool {
    let path = path.trim_start_matches(['-', '+', '~', '$']);
    let mut parts = path.rsplit(['.', '/', ':']).filter(|p| !p.is_empty());
    let Some(last) = parts.next() else {
        return false;
    };
    if parts.any(|p| secrecy(p) != Secrecy::Clear) {
        return false;
    }
    let words = words(last);
    words.last().is_some_and(|w| w == "token")
        && words[..words.len() - 1].iter().all(|w| {
            !ALWAYS.iter().any(|a| w.contains(a))
                && !ALWAYS_WORDS.contains(&w.as_str())
                && !KEY_QUALIFIERS.contains(&w.as_str())
        })
}

/// `<|im_start|>`, `</s>`, `<start_of_turn>`, `[Q]`, `[SEP]`: a special token's marker, 32
/// characters at most, in angle or square brackets, no blank in it.
pub fn is_token_marker(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']);
    let bracketed =
        (v.starts_with('<') && v.ends_with('>')) || (v.starts_with('[') && v.ends_with(']'));
    bracketed && (3..=32).contains(&v.len()) && !v.contains(char::is_whitespace)
}

/// `1`, `"2"`, `10`: one or two digits.
pub fn is_small_count(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']).trim();
    (1..=2).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

/// A value that carries no secret whatever its key: empty, a boolean, null, a reference to
/// a variable (`${DB_PASSWORD}`, `${oc.env:TOKEN}`), a type, or already redacted.
pub fn is_harmless(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']).trim();
    if v.is_empty() || v == super::REDACTED || v == "***" {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "null"
            | "none"
            | "nil"
            | "~"
            | "str"
            | "string"
            | "int"
            | "bool"
            | "bytes"
            | "optional[str]"
            | "str | none"
            | "required"
            | "[]"
            | "{}"
    ) {
        return true;
    }
    // `${DB_PASSWORD}`, `${oc.env:HF_TOKEN}`, `$TOKEN`: a reference, by the usual spelling of
    // variable names (`$Abc123` is a password that starts with a dollar).
    let name_like = |n: &str, extra: &[u8]| {
        n.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
    };
    if let Some(inner) = v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        return name_like(inner, b".:-");
    }
    v.strip_prefix('$')
        .is_some_and(|n| name_like(n, b"") && !n.bytes().any(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_judgements_are_the_judgements() {
        // `secrecy` answers digits alone without judging them, and the rest from memory
        // after the first time: the same answers as judging anew, twice over.
        for name in [
            "0", "1234567", "00", "password", "api_key", "pass", "lr", "a1b2", "KEY",
        ] {
            assert_eq!(secrecy(name), judged(name), "{name}");
            assert_eq!(secrecy(name), judged(name), "{name}, remembered");
        }
        let long = format!("{}_token", "x".repeat(80));
        assert_eq!(secrecy(&long), judged(&long));
        assert_eq!(secrecy(&long), Secrecy::Strong);
        // A part named `key` is told apart from one that only holds the letters.
        assert_eq!(path_secrecy("api.key"), Secrecy::Strong);
        assert_eq!(path_secrecy("api.KEY"), Secrecy::Strong);
        assert_eq!(path_secrecy("api.monkey"), Secrecy::Clear);
        assert_eq!(path_secrecy("layers.12345.lr"), Secrecy::Clear);
    }

    #[test]
    fn words_split_on_separators_and_camel_case() {
        assert_eq!(words("pad_token_id"), ["pad", "token", "id"]);
        assert_eq!(words("padTokenId"), ["pad", "token", "id"]);
        assert_eq!(words("HFToken"), ["hf", "token"]);
        assert_eq!(words("--api-key"), ["api", "key"]);
        assert_eq!(words("PGPASSWORD"), ["pgpassword"]);
        assert_eq!(words("db.password"), ["db", "password"]);
    }

    #[test]
    fn secret_names_by_meaning() {
        let secret = [
            "password",
            "db_password",
            "DB_PASS",
            "MYSQL_PWD",
            "GPG_PASSPHRASE",
            "HF_TOKEN",
            "token",
            "access_token",
            "use_auth_token",
            "WANDB_API_KEY",
            "apiKey",
            "api_key",
            "secret_key",
            "AWS_SECRET_ACCESS_KEY",
            "client_secret",
            "credentials",
            "passwords",
            "secrets",
            "auth",
            "basic_auth",
            "PGPASSWORD",
            "SESSION_COOKIE",
            "private_key",
            "ssh_key",
            "Authorization",
            "pass",
            "accessToken",
            "passcode",
            "pass_phrase",
            "pass-phrase",
            "PGPASS",
            "SSHPASS",
            "passin",
            "OPENAI_KEY_2",
            "HF_TOKEN_1",
            "kaggle_key",
            "SENTRY_KEY",
            "passkey",
        ];
        for name in secret {
            assert!(is_secret_name(name), "{name} should be secret");
        }
        let clear = [
            "pad_token_id",
            "eos_token_id",
            "bos_token_id",
            "pad_token",
            "eos_token",
            "max_tokens",
            "max_new_tokens",
            "author",
            "session_len",
            "auth_free",
            "hidden_size",
            "num_key_value_heads",
            "key_dim",
            "keyframe",
            "monkey",
            "sort_key",
            "PWD",
            "OLDPWD",
            "SSH_AUTH_SOCK",
            "TOKENIZERS_PARALLELISM",
            "password_file",
            "token_type_ids",
            "GIT_ASKPASS",
            "num_pass",
            "key",
            "tokenizer_name",
            "no_password",
            "decoder_start_token_id",
            "AWS_ACCESS_KEY_ID",
            "MY_AUTH_MODE",
            "bypass",
            "compass",
            "multipass",
            "passthrough",
            "key_2",
            "layer_2",
            "pad_token_2",
            "code",
            "phrase",
            "word_dropout",
        ];
        for name in clear {
            assert!(!is_secret_name(name), "{name} should stay clear");
        }
    }

    #[test]
    fn strong_and_weak_secret_names() {
        for strong in [
            "HF_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "client_secret",
            "WANDB_API_KEY",
            "SESSION_COOKIE",
            "PGPASS",
            "OPENAI_KEY_2",
            "passcode",
        ] {
            assert_eq!(secrecy(strong), Secrecy::Strong, "{strong}");
        }
        for weak in ["MY_AUTH", "DB_PASS", "MYSQL_PWD", "basic_auth"] {
            assert_eq!(secrecy(weak), Secrecy::Weak, "{weak}");
        }
        assert_eq!(secrecy("WANDB_MODE"), Secrecy::Clear);
        assert_eq!(path_secrecy("db.pass"), Secrecy::Weak);
        assert_eq!(path_secrecy("auth.api_key"), Secrecy::Strong);
    }

    #[test]
    fn paths_are_secret_when_any_part_is() {
        assert!(is_secret_path("auth.pass"));
        assert!(is_secret_path("passwords.0"));
        assert!(is_secret_path("secrets.db"));
        assert!(is_secret_path("+db.password"));
        assert!(is_secret_path("++wandb.api_key"));
        assert!(is_secret_path("--hf-token"));
        assert!(!is_secret_path("model.pad_token_id"));
        assert!(!is_secret_path("trainer.max_steps"));
    }

    #[test]
    fn harmless_values() {
        for v in [
            "",
            "true",
            "False",
            "null",
            "~",
            "${DB_PASSWORD}",
            "$TOKEN",
            "[REDACTED]",
        ] {
            assert!(is_harmless(v), "{v}");
        }
        for v in [
            "hunter2",
            "2048",
            "${a}${b}x",
            "$ecret!",
            "$000AaAa0",
            "$Abc123",
        ] {
            assert!(!is_harmless(v), "{v}");
        }
    }
}
