//! The redaction engine end to end (issue 15, item 4): a corpus of secrets planted on every
//! channel reaches nothing lineage writes or prints; a corpus of common ML settings stays in
//! clear; a redacted file keeps the hash of its real bytes.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// The secrets planted, each a string that must appear nowhere, with the channel it went in by.
#[derive(Default)]
struct Corpus {
    planted: Vec<(&'static str, String)>,
}

impl Corpus {
    /// Plant `secret` on `channel`; returns it, for the text it goes into.
    fn plant(&mut self, channel: &'static str, secret: &str) -> String {
        assert!(
            !self.planted.iter().any(|(_, s)| s == secret),
            "{secret} planted twice"
        );
        self.planted.push((channel, secret.to_string()));
        secret.to_string()
    }
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// A secret's byte forms to look for: as written, and in UTF-16 either way round.
fn forms(secret: &str) -> [Vec<u8>; 3] {
    let le: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = secret.encode_utf16().flat_map(u16::to_be_bytes).collect();
    [secret.as_bytes().to_vec(), le, be]
}

fn found(haystack: &[u8], secret: &str) -> bool {
    forms(secret).iter().any(|f| contains(haystack, f))
}

/// Plant the whole corpus in one run of a real repository: its environment, its command
/// line, its params, eight configs, eight untracked files and an uncommitted patch.
fn plant_everything(env: &Env, c: &mut Corpus) -> Vec<String> {
    // The repository: two tracked files, one with a secret the working copy then removes.
    env.git(&["init", "-q"]);
    let removed = c.plant("patch", "E75-committed-removed");
    env.write("app.yaml", format!("lr: 0.1\nold_password: {removed}\n"));
    env.write("run.sh", "echo run\n");
    env.git(&["add", "app.yaml", "run.sh"]);
    env.git(&["commit", "-q", "-m", "first"]);
    let patch_yaml = format!(
        "lr: 0.1\nauth:\n  pass: {}\npasswords:\n  - {}\nprivate: |\n  -----BEGIN OPENSSH PRIVATE KEY-----\n  {}\n  -----END OPENSSH PRIVATE KEY-----\n",
        c.plant("patch", "E71-patch-auth"),
        c.plant("patch", "E72-patch-list"),
        c.plant("patch", "E73patchPEMbody"),
    );
    env.write("app.yaml", patch_yaml);
    env.write(
        "run.sh",
        format!(
            "echo run\nexport AWS_SECRET_ACCESS_KEY={}\n",
            c.plant("patch", "E74-patch-export")
        ),
    );

    // Untracked files: by name, by encoding, by shape.
    env.write(
        "id_rsa",
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            c.plant("untracked", "E58idrsaBODY")
        ),
    );
    env.write(
        ".env",
        format!("ANYTHING={}\n", c.plant("untracked", "E59-dotenv-value")),
    );
    env.write(
        "server.pem",
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            c.plant("untracked", "E60pemfileBODY")
        ),
    );
    env.write(
        "notes16.txt",
        utf16le(&format!(
            "api_key = {}\r\nlr = 0.1\r\n",
            c.plant("untracked utf-16", "E61-utf16-untracked")
        )),
    );
    let mut latin1 = b"caf\xe9 = 1\npassword = ".to_vec();
    latin1.extend_from_slice(c.plant("untracked latin-1", "E62-latin1-pass").as_bytes());
    latin1.extend_from_slice(b"\xe9\n");
    env.write("latin1.cfg", latin1);
    let mut stray = b"token: ".to_vec();
    stray.extend_from_slice(c.plant("untracked stray byte", "E63-stray-byte").as_bytes());
    stray.extend_from_slice(b"\nnext: \xff\n");
    env.write("stray.txt", stray);
    env.write(
        "deploy.sh",
        format!(
            "export GITHUB_TOKEN={}\nmysql --password={} db\ncurl -H \"Authorization: Bearer {}\" https://x\nsshpass -p {} ssh h\ncurl -H \"Authorization: Token {}\" https://x\n",
            c.plant("untracked", "E64-export-line"),
            c.plant("untracked", "E65-sh-flag"),
            c.plant("untracked", "E66bearerTOKEN1234"),
            c.plant("untracked", "E96-sshpass-script"),
            c.plant("untracked", "E97-token-scheme"),
        ),
    );
    env.write(
        "notes.md",
        format!(
            "key one: {}\nkey two: {}\n",
            c.plant("untracked", "sk-proj-E67abcdefghijklmnopqrstuvwxyz"),
            c.plant("untracked", "AKIAE68ABCDEFGHIJKLM"),
        ),
    );
    env.write(
        "client.py",
        format!(
            "api_key = \"{}\"\nheaders = {{\"X-Api-Key\": \"{}\"}}\n",
            c.plant("untracked", "E69-python-literal"),
            c.plant("untracked", "E70-header-value"),
        ),
    );

    // Configs: YAML, JSON, TOML, INI, an env file, one that fails to parse, one in UTF-16.
    env.write(
        "cfg.yaml",
        format!(
            "model:\n  hidden_size: 2048\nauth:\n  user: bob\n  pass: {}\npasswords:\n  - {}\n  - {}\ndb:\n  password: |\n    {}\n    {}\n  host: db.local\ntls:\n  private_key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    {}\n    -----END RSA PRIVATE KEY-----\nwandb:\n  api_key: \"{}\"\nsetup: \"export API_TOKEN={}\"\nstorage: {{account_key: {}}}\nkaggle_key: {}\nwebhook: \"https://discord.com/api/webhooks/123/{}\"\nauth_header: \"Basic {}\"\nenv:\n  - name: OPENAI_API_KEY\n    value: {}\n  - name: LR\n    value: '0.1'\n  - {{name: WANDB_API_KEY, value: {}}}\n  - {{key: HF_TOKEN, value: {}}}\n  - value: {}\n    name: GITHUB_TOKEN\nargs: [\"--api-key\", \"{}\", \"--lr\", \"0.1\"]\ncommand:\n  - python\n  - --hf-token\n  - {}\ncmd: \"docker run --env=PASSWORD={} img\"\n",
            c.plant("config yaml", "E34-yaml-auth-pass"),
            c.plant("config yaml", "E35-yaml-list-1"),
            c.plant("config yaml", "E36-yaml-list-2"),
            c.plant("config yaml", "E37-block-line-1"),
            c.plant("config yaml", "E38-block-line-2"),
            c.plant("config yaml", "E39yamlPEMbody"),
            c.plant("config yaml", "E40-yaml-quoted"),
            c.plant("config yaml", "E41-yaml-export"),
            c.plant("config yaml", "E42-flow-key"),
            c.plant("config yaml", "E91-kaggle-key"),
            c.plant("config yaml", "E92discordTOKEN"),
            // base64 of `E93user:E93pw`.
            c.plant("config yaml", "RTkzdXNlcjpFOTNwdw=="),
            c.plant("config yaml k8s env", "E100-k8s-env-block"),
            c.plant("config yaml k8s env", "E101-k8s-env-flow"),
            c.plant("config yaml k8s env", "E102-key-value-flow"),
            c.plant("config yaml k8s env", "E132-value-first"),
            c.plant("config yaml argv list", "E103-args-list"),
            c.plant("config yaml argv list", "E104-command-block"),
            c.plant("config yaml string", "E105-cmd-env-eq"),
        ),
    );
    env.write(
        "cfg.json",
        format!(
            r#"{{"auth": {{"pass": "{}\"quoted"}}, "password": "{}", "client_secret": "{}", "private_key": "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", "hidden_size": 2048, "env": [{{"name": "OPENAI_API_KEY", "value": "{}"}}, {{"name": "LR", "value": "1"}}], "args": ["--api-key", "{}", "--lr", "1"]}}"#,
            c.plant("config json", "E43-json"),
            c.plant("config json", "E44-json-pass"),
            c.plant("config json", "E45-json-client"),
            c.plant("config json", "E46jsonPEM"),
            c.plant("config json k8s env", "E106-json-env"),
            c.plant("config json argv list", "E107-json-args"),
        ),
    );
    env.write(
        "cfg.toml",
        format!(
            "lr = 0.1\ntoken = '{}'\n[auth]\npass = \"{}\"\n[db]\npassword = \"\"\"\n{}\n{}\n\"\"\"\nport = 5432\n",
            c.plant("config toml", "E50-toml-literal"),
            c.plant("config toml", "E47-toml-auth"),
            c.plant("config toml", "E48-toml-multi-1"),
            c.plant("config toml", "E49-toml-multi-2"),
        ),
    );
    env.write(
        "cfg.ini",
        format!(
            "[credentials]\nuser = {}\n[db]\nhost = h\npasswd = {}\n",
            c.plant("config ini", "E51-ini-in-secret-section"),
            c.plant("config ini", "E52-ini-passwd"),
        ),
    );
    env.write(
        "prod.env",
        format!(
            "HOST={}\nexport DB_PASSWORD=\"{}\"\n",
            c.plant("config env file", "E53-envfile-host"),
            c.plant("config env file", "E54-envfile-quoted"),
        ),
    );
    env.write(
        "broken.yaml",
        format!(
            "password: {}\n  bad: [unclosed\napi_key = {}\n",
            c.plant("config unparsable", "E55-broken-pass"),
            c.plant("config unparsable", "E56-broken-key"),
        ),
    );
    env.write(
        "cfg16.yaml",
        utf16le(&format!(
            "lr: 0.1\r\npassword: {}\r\n",
            c.plant("config utf-16", "E57-utf16-config")
        )),
    );

    // A netrc entry in a file not named .netrc, on one line and over several.
    env.write(
        "hosts.cfg",
        format!(
            "machine api.example.com login bob password {}\nmachine h2\n  login alice\n  password {}\n",
            c.plant("config netrc", "E89-netrc-line"),
            c.plant("config netrc", "E90-netrc-lines"),
        ),
    );

    // The command line after the job's own script, and the params.
    let argv = vec![
        "--password".to_string(),
        c.plant("argv", "E16-argv-pass"),
        "--passphrase".to_string(),
        c.plant("argv", "E17-argv-phrase"),
        format!("--api-key={}", c.plant("argv", "E18-argv-key")),
        format!("+db.password={}", c.plant("argv", "E19-hydra-pass")),
        format!("++wandb.api_key={}", c.plant("argv", "E20-hydra-key")),
        format!("auth.token={}", c.plant("argv", "E21-dotted-token")),
        format!(
            "mysql -u root --password {} -e 'select 1'",
            c.plant("argv", "E22-bash-pass")
        ),
        format!(
            "https://api.example/v1?api_key={}&page=2",
            c.plant("argv", "E23-argv-query")
        ),
        format!("https://u:{}@host/x", c.plant("argv", "E24-argv-url-pass")),
        c.plant("argv", "ghp_E25abcdefghijklmnopqrstuvwxyz0123"),
        "--hf-token".to_string(),
        c.plant("argv", "E26-argv-hf-token"),
        format!("--db-password={}", c.plant("argv", "E27-argv-db-pass")),
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            c.plant("argv", "E28argvPEMbody")
        ),
        "-p".to_string(),
        format!("secrets.db={}", c.plant("argv", "E76-argv-nested")),
        // Passwords only the program gives a meaning to, in a script.
        format!(
            "curl -u bob:{} -H \"Authorization: Basic {}\" http://x/; mysql -p{}; sshpass -p {} true; redis-cli -a {} ping; docker login -u bob -p {} r.io",
            c.plant("argv script", "E77-curl-user"),
            c.plant("argv script", "E78basicTOKEN"),
            c.plant("argv script", "E79-mysql-glued"),
            c.plant("argv script", "E80-sshpass"),
            c.plant("argv script", "E84-redis"),
            c.plant("argv script", "E98-docker-login"),
        ),
        "--user".to_string(),
        format!("admin:{}", c.plant("argv", "E81-user-colon")),
        format!("--passcode={}", c.plant("argv", "E82-passcode")),
        "--pass-phrase".to_string(),
        c.plant("argv", "E83-pass-phrase"),
        // A `KEY=VALUE` pair as an option's value, joined by `=`.
        format!("--env=PASSWORD={}", c.plant("argv joined", "E108-env-eq")),
        format!(
            "--build-arg=API_KEY={}",
            c.plant("argv joined", "E109-build-arg")
        ),
        format!(
            "--set=db.password={}",
            c.plant("argv joined", "E110-helm-set")
        ),
        format!(
            "--conf=spark.hadoop.fs.s3a.secret.key={}",
            c.plant("argv joined", "E111-spark-conf")
        ),
        format!(
            "--var=db_password={}",
            c.plant("argv joined", "E112-tf-var")
        ),
        format!(
            "--from-literal=password={}",
            c.plant("argv joined", "E113-kubectl-literal")
        ),
        format!(
            "--extra-vars=ansible_password={}",
            c.plant("argv joined", "E114-ansible-vars")
        ),
        format!(
            "--define=password={}",
            c.plant("argv joined", "E115-define")
        ),
        // A setting's name, then its value.
        "aws".to_string(),
        "configure".to_string(),
        "set".to_string(),
        "aws_secret_access_key".to_string(),
        c.plant("argv positional", "E116-aws-configure-set"),
        "npm".to_string(),
        "config".to_string(),
        "set".to_string(),
        "//registry.npmjs.org/:_authToken".to_string(),
        c.plant("argv positional", "E117-npm-auth-token"),
        format!(
            "docker run --env=HF_TOKEN={} img; dvc remote modify --local r password {}",
            c.plant("argv script", "E118-script-env-eq"),
            c.plant("argv script", "E119-dvc-modify"),
        ),
    ];
    let params = vec![
        format!("secrets.db={}", c.plant("params", "E29-param-nested")),
        format!("db_password={}", c.plant("params", "E30-param-pass")),
        format!("auth.pass={}", c.plant("params", "E31-param-auth")),
        format!("wandb.api_key={}", c.plant("params", "E32-param-key")),
        format!(
            "mirror=https://x:{}@h/p",
            c.plant("params", "E33-param-url")
        ),
        format!("kaggle_key={}", c.plant("params", "E94-param-kaggle")),
        format!(
            "db.conn=Server=h;Uid=u;Pwd={};",
            c.plant("params", "E120-odbc-pwd")
        ),
        format!(
            "hook=https://discord.com/api/webhooks/9/{}",
            c.plant("params", "E95discordPARAM")
        ),
    ];
    let mut args: Vec<String> = vec!["run".into(), "-o".into(), "out.txt".into()];
    for cfg in [
        "cfg.yaml",
        "cfg.json",
        "cfg.toml",
        "cfg.ini",
        "prod.env",
        "broken.yaml",
        "cfg16.yaml",
        "hosts.cfg",
    ] {
        args.extend(["-c".to_string(), cfg.to_string()]);
    }
    for p in &params {
        args.extend(["-p".to_string(), p.clone()]);
    }
    args.extend(
        ["--", "sh", "-c", "echo ok > out.txt", "sh"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.extend(argv);
    args
}

/// The environment's secrets: (name, value, the secret in it).
fn env_secrets(c: &mut Corpus) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, value: String| v.push((name, value));
    add(
        "HF_TOKEN",
        c.plant("env", "hf_Zq8Lm2Nx4Pw6Rt8Vy0Ab2Cd4Ef6Gh8IjE01"),
    );
    add("MYSQL_PWD", c.plant("env", "E02-mysql-pwd"));
    add("DB_PASS", c.plant("env", "E03-db-pass"));
    add("GPG_PASSPHRASE", c.plant("env", "gpg phrase E04"));
    add("PGPASSWORD", c.plant("env", "E05-pg-password"));
    add(
        "AWS_SECRET_ACCESS_KEY",
        c.plant("env", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYE06KEY"),
    );
    add(
        "INNOCENT_A",
        c.plant("env", "sk_test_E07abcdefghijklmnopqrs"),
    );
    add(
        "DOWNLOAD_URL",
        format!(
            "https://files.example/x?token={}&page=1",
            c.plant("env", "E08-query-token")
        ),
    );
    add(
        "GIT_MIRROR",
        format!(
            "https://{}@git.example/r.git",
            c.plant("env", "E09usertoken0123456789")
        ),
    );
    add("LINEAGE_ARG_3", c.plant("env", "E10-lineage-arg-secret"));
    add(
        "JAVA_OPTS",
        format!("-Xmx1g -Dpassword={}", c.plant("env", "E11-opts-pass")),
    );
    add("SLACK_X", c.plant("env", "xoxb-E12-1234567890-abcdef"));
    add("SESSION_COOKIE", c.plant("env", "E13-cookie-value"));
    add("NPM_TOKEN", c.plant("env", "E14-npm-token-value"));
    add(
        "DATABASE_URL",
        format!("postgres://trainer:{}@db/x", c.plant("env", "E15-url-pass")),
    );
    add(
        "SENTRY_DSN",
        format!(
            "https://{}@o1.ingest.sentry.io/1",
            c.plant("env", "E85sentryKEY")
        ),
    );
    // base64 of `E86user:E86basicpw`.
    add(
        "AUTH_HEADER",
        format!("Basic {}", c.plant("env", "RTg2dXNlcjpFODZiYXNpY3B3")),
    );
    add("PGPASS", c.plant("env", "E87-pgpass"));
    add("OPENAI_KEY_2", c.plant("env", "E88-numbered-key"));
    add("SSHPASS", c.plant("env", "E99-sshpass-env"));
    add(
        "TELEGRAM_BOT_TOKEN",
        c.plant("env", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsE121"),
    );
    add("DISCORD_BOT_TOKEN", c.plant("env", "E122-discord-bot"));
    add("HF_TOKEN_WRITE", c.plant("env", "E123-hf-token-write"));
    add("OPENAI_API_KEY_PROD", c.plant("env", "E124-openai-prod"));
    add("GITHUB_TOKEN_RO", c.plant("env", "E125-github-ro"));
    add("PRIVATE_KEY_BASE64", c.plant("env", "E126-private-b64"));
    add("WANDB_KEY_TEAM", c.plant("env", "E127-wandb-team"));
    add("KEY_OPENAI", c.plant("env", "E128-key-openai"));
    add("TOKEN_GITHUB", c.plant("env", "E129-token-github"));
    add("GH_PAT", c.plant("env", "E130-gh-pat"));
    add("GITLAB_PAT", c.plant("env", "E131-gitlab-pat"));
    v
}

/// Everything a user can get out of the store about the run, by where it came from.
fn every_place(env: &Env, id: &str) -> Vec<(String, Vec<u8>)> {
    let mut places: Vec<(String, Vec<u8>)> = env
        .store_files()
        .into_iter()
        .map(|(p, bytes)| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (format!("store file {}", name.unwrap_or_default()), bytes)
        })
        .collect();
    let bundle = env.root().join("runs.lineage");
    let out = env.cmd([
        "bundle".as_ref(),
        "export".as_ref(),
        "-o".as_ref(),
        bundle.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    places.push((
        "bundle export".into(),
        std::fs::read(&bundle).expect("bundle"),
    ));
    let commands: &[&[&str]] = &[
        &["export", "--format", "prov-json", id],
        &["export", "--format", "in-toto", id],
        &["export", "--format", "openlineage", id],
        &["show", "--format", "html", id],
        &["show", id],
        &["show", "--json", id],
        &["show", "--format", "dot", "out.txt"],
        &["show", "--format", "mermaid", "out.txt"],
        &["show", "out.txt"],
        &["list"],
        &["list", "--json"],
        &["rerun", "--dry-run", id],
        &["diff", id, id],
    ];
    for args in commands {
        let out = env.cmd(*args);
        assert!(
            matches!(code(&out), 0 | 1 | 100 | 125),
            "{args:?}: {}",
            stderr(&out)
        );
        places.push((
            format!("lineage {}", args[..args.len().min(3)].join(" ")),
            both(&out),
        ));
    }
    places
}

fn both(out: &Output) -> Vec<u8> {
    let mut v = out.stdout.clone();
    v.extend_from_slice(&out.stderr);
    v
}

#[test]
fn a_corpus_of_secrets_on_every_channel_reaches_nothing_lineage_writes_or_prints() {
    let env = Env::local();
    let mut corpus = Corpus::default();
    let args = plant_everything(&env, &mut corpus);
    let vars = env_secrets(&mut corpus);
    let mut cmd = env.lineage();
    cmd.args(&args);
    for (name, value) in &vars {
        cmd.env(name, value);
    }
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let planted = corpus.planted.len();
    assert!(planted >= 132, "only {planted} secrets planted");
    let run = env.show(None);
    let id = run["id"].as_str().expect("id").to_string();
    // Every channel was really captured: the configs, the untracked files, the patch.
    assert_eq!(run["configs"].as_array().expect("configs").len(), 8);
    let untracked: Vec<&str> = run["git"]["untracked"]
        .as_array()
        .expect("untracked")
        .iter()
        .filter(|u| u["stored"] == true)
        .filter_map(|u| u["path"].as_str())
        .collect();
    for name in ["id_rsa", ".env", "notes16.txt", "latin1.cfg", "deploy.sh"] {
        assert!(untracked.contains(&name), "{name} not kept: {untracked:?}");
    }
    assert!(run["git"]["patch"].is_string(), "no patch recorded");
    assert!(
        !run["env"]
            .as_object()
            .expect("env")
            .keys()
            .any(|k| k.starts_with("LINEAGE_")),
        "a LINEAGE_ variable was recorded"
    );

    let places = every_place(&env, &id);
    let mut report = Vec::new();
    let mut leaks = Vec::new();
    for (place, bytes) in &places {
        let hits: Vec<&str> = corpus
            .planted
            .iter()
            .filter(|(_, s)| found(bytes, s))
            .map(|(channel, s)| {
                leaks.push(format!("{s} (planted in {channel}) found in {place}"));
                s.as_str()
            })
            .collect();
        report.push(format!("{place}: {} found", hits.len()));
    }
    // The job's own terminal output is lineage's too.
    for (_, s) in &corpus.planted {
        if found(&out.stderr, s) {
            leaks.push(format!("{s} printed by lineage run"));
        }
    }
    eprintln!(
        "{planted} secrets planted over {} places:\n{}",
        places.len(),
        report.join("\n")
    );
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// Common settings of ML configs (Hugging Face tokenizers, models, trainers and generation,
/// PyTorch Lightning, Hydra, optimizers, data loaders): none is a secret, all stay in clear.
const CLEAR: &[(&str, &str)] = &[
    ("tokenizer.pad_token_id", "0"),
    ("tokenizer.eos_token_id", "2"),
    ("tokenizer.bos_token_id", "1"),
    ("tokenizer.unk_token_id", "3"),
    ("tokenizer.pad_token", "<pad>"),
    ("tokenizer.eos_token", "</s>"),
    ("tokenizer.bos_token", "<s>"),
    ("tokenizer.unk_token", "<unk>"),
    ("tokenizer.mask_token", "<mask>"),
    ("tokenizer.sep_token", "[SEP]"),
    ("tokenizer.cls_token", "[CLS]"),
    ("tokenizer.model_max_length", "4096"),
    ("tokenizer.padding_side", "left"),
    ("tokenizer.truncation_side", "right"),
    ("tokenizer.add_bos_token", "true"),
    ("tokenizer.add_eos_token", "false"),
    ("tokenizer.use_fast", "true"),
    ("tokenizer.tokenizer_class", "LlamaTokenizer"),
    ("tokenizer.clean_up_tokenization_spaces", "false"),
    ("tokenizer.legacy", "false"),
    ("model.hidden_size", "2048"),
    ("model.intermediate_size", "5632"),
    ("model.num_attention_heads", "32"),
    ("model.num_key_value_heads", "4"),
    ("model.num_hidden_layers", "22"),
    ("model.head_dim", "64"),
    ("model.key_dim", "64"),
    ("model.value_dim", "64"),
    ("model.vocab_size", "32000"),
    ("model.max_position_embeddings", "2048"),
    ("model.rope_theta", "10000.0"),
    ("model.rms_norm_eps", "1e-05"),
    ("model.hidden_act", "silu"),
    ("model.attention_dropout", "0.0"),
    ("model.tie_word_embeddings", "false"),
    ("model.torch_dtype", "bfloat16"),
    ("model.model_type", "llama"),
    ("model.architectures", "LlamaForCausalLM"),
    ("model.initializer_range", "0.02"),
    ("model.use_cache", "true"),
    ("model.decoder_start_token_id", "0"),
    ("model.sliding_window", "4096"),
    ("model.attn_implementation", "flash_attention_2"),
    ("model.keyframe_interval", "8"),
    ("model.monkey_patch", "false"),
    ("generation.max_new_tokens", "256"),
    ("generation.max_tokens", "512"),
    ("generation.min_new_tokens", "1"),
    ("generation.temperature", "0.7"),
    ("generation.top_p", "0.9"),
    ("generation.top_k", "50"),
    ("generation.do_sample", "true"),
    ("generation.num_beams", "4"),
    ("generation.repetition_penalty", "1.1"),
    ("generation.length_penalty", "1.0"),
    ("generation.no_repeat_ngram_size", "3"),
    ("generation.early_stopping", "true"),
    ("generation.stop_token", "###"),
    ("training.output_dir", "outputs/run-1"),
    ("training.per_device_train_batch_size", "8"),
    ("training.per_device_eval_batch_size", "16"),
    ("training.gradient_accumulation_steps", "4"),
    ("training.learning_rate", "2e-05"),
    ("training.weight_decay", "0.01"),
    ("training.adam_beta1", "0.9"),
    ("training.adam_beta2", "0.999"),
    ("training.adam_epsilon", "1e-08"),
    ("training.max_grad_norm", "1.0"),
    ("training.num_train_epochs", "3"),
    ("training.max_steps", "10000"),
    ("training.lr_scheduler_type", "cosine"),
    ("training.warmup_ratio", "0.03"),
    ("training.warmup_steps", "500"),
    ("training.logging_steps", "10"),
    ("training.save_steps", "1000"),
    ("training.save_total_limit", "3"),
    ("training.eval_strategy", "steps"),
    ("training.seed", "42"),
    ("training.bf16", "true"),
    ("training.gradient_checkpointing", "true"),
    ("training.report_to", "wandb"),
    ("training.run_name", "llama-sft"),
    ("training.push_to_hub", "false"),
    ("training.hub_model_id", "org/llama-sft"),
    ("training.author", "Jane Doe"),
    ("training.session_len", "4096"),
    ("training.auth_free", "1"),
    ("training.dataloader_num_workers", "4"),
    ("training.optim", "adamw_torch"),
    ("training.deepspeed", "ds_config.json"),
    ("trainer.accelerator", "gpu"),
    ("trainer.devices", "8"),
    ("trainer.strategy", "ddp"),
    ("trainer.precision", "bf16-mixed"),
    ("trainer.max_epochs", "10"),
    ("trainer.accumulate_grad_batches", "2"),
    ("trainer.gradient_clip_val", "1.0"),
    ("trainer.log_every_n_steps", "50"),
    ("trainer.check_val_every_n_epoch", "1"),
    ("trainer.num_sanity_val_steps", "2"),
    ("trainer.deterministic", "true"),
    ("trainer.callbacks.checkpoint.monitor", "val_loss"),
    ("trainer.callbacks.checkpoint.mode", "min"),
    ("trainer.callbacks.checkpoint.save_top_k", "3"),
    ("data.dataset_name", "wikitext"),
    ("data.dataset_config_name", "wikitext-103-raw-v1"),
    ("data.text_column", "text"),
    ("data.sort_key", "length"),
    ("data.max_seq_length", "2048"),
    ("data.num_proc", "8"),
    ("data.streaming", "false"),
    ("data.shuffle_buffer", "10000"),
    ("hydra.run.dir", "outputs/2026-11-01"),
    ("hydra.job.name", "train"),
    ("hydra.job.chdir", "true"),
    ("hydra.verbose", "false"),
    ("optimizer._target_", "torch.optim.AdamW"),
    ("optimizer.lr", "0.0003"),
    ("optimizer.beta1", "0.9"),
    ("optimizer.eps", "1e-08"),
    (
        "scheduler._target_",
        "transformers.get_cosine_schedule_with_warmup",
    ),
    ("peft.lora_r", "16"),
    ("peft.lora_alpha", "32"),
    ("peft.lora_dropout", "0.05"),
    ("peft.target_modules", "q_proj,v_proj"),
    // Settings with a secret-sounding word: an encoder's pass, a retrieval benchmark's
    // passkey, a chat template's and a tool parser's special tokens.
    ("eval.pass", "1"),
    ("eval.eval_pass", "2"),
    ("eval.final_pass", "1"),
    ("eval.passkey_depth", "0.5"),
    ("chat.response_token", "<|assistant|>"),
    ("chat.start_of_turn_token", "<start_of_turn>"),
    ("chat.end_of_turn_token", "<end_of_turn>"),
    ("chat.system_token", "<|system|>"),
    ("chat.user_token", "<|user|>"),
    ("chat.query_token", "[Q]"),
    ("chat.ignore_token", "-100"),
    ("chat.tool_call_token", "<tool_call>"),
    ("chat.label_token", "<l>"),
    ("model.token_dropout", "0.1"),
    ("model.token_type_ids", "0"),
    ("model.token_id", "7"),
];

/// The YAML of CLEAR: nested by the keys' dots (list items by their index).
fn clear_yaml() -> String {
    let mut tree = serde_json::Map::new();
    for (key, value) in CLEAR {
        let parts: Vec<&str> = key.split('.').collect();
        let mut node = &mut tree;
        for part in &parts[..parts.len() - 1] {
            node = node
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()))
                .as_object_mut()
                .expect("a mapping");
        }
        node.insert(
            parts[parts.len() - 1].to_string(),
            Value::String(value.to_string()),
        );
    }
    let mut out = String::new();
    write_yaml(&Value::Object(tree), 0, &mut out);
    out
}

fn write_yaml(v: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = v else { return };
    for (k, v) in map {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(_) => {
                out.push_str(&format!("{pad}{k}:\n"));
                write_yaml(v, indent + 2, out);
            }
            // Quoted: YAML reads each back as the very string written.
            Value::String(s) => out.push_str(&format!("{pad}{k}: \"{s}\"\n")),
            _ => {}
        }
    }
}

/// What a param's value reads as, as text.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn common_ml_settings_stay_in_clear_in_params_configs_and_argv() {
    assert!(CLEAR.len() >= 141, "only {} settings", CLEAR.len());
    let env = Env::local();
    env.init_repo();
    let yaml = clear_yaml();
    env.write("ml.yaml", &yaml);
    // The same settings as flags and as `--param`s.
    let flags: Vec<String> = CLEAR
        .iter()
        .map(|(k, v)| format!("--{}={v}", k.rsplit('.').next().expect("leaf")))
        .collect();
    let mut args: Vec<String> = ["run", "-c", "ml.yaml"].map(String::from).to_vec();
    for (k, v) in CLEAR.iter().take(40) {
        args.extend(["-p".to_string(), format!("cli.{k}={v}")]);
    }
    args.extend(["--", "sh", "-c", "exit 0", "sh"].map(String::from));
    args.extend(flags.iter().cloned());
    args.extend(
        [
            "--max-new-tokens",
            "256",
            "--pad-token-id",
            "0",
            "--author",
            "jane",
            "--session-len",
            "8",
            "--auth-free",
            "1",
            "-pass",
            "1",
            "--eval_pass",
            "2",
            "--passkey_depth",
            "0.5",
            "--response_token",
            "<|assistant|>",
            "--ignore_token",
            "-100",
            "--tool_call_token",
            "<tool_call>",
        ]
        .map(String::from),
    );
    let out = env.cmd(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let params = &run["params"];
    let mut kept = 0;
    for (key, value) in CLEAR {
        assert_eq!(shown(&params[*key]), *value, "param {key} changed");
        kept += 1;
    }
    for (key, value) in CLEAR.iter().take(40) {
        let got = shown(&params[format!("cli.{key}")]);
        let same_number = matches!(
            (got.parse::<f64>(), value.parse::<f64>()),
            (Ok(a), Ok(b)) if a == b
        );
        assert!(got == *value || same_number, "--param cli.{key}: {got}");
        kept += 1;
    }
    // The config is stored as it is: nothing in it was taken for a secret.
    assert_eq!(run["configs"][0]["redacted"], false, "{yaml}");
    assert_eq!(run["configs"][0]["hash"], blake3_hex(yaml.as_bytes()));
    // And the command line too: no argument redacted, so a rerun asks for none.
    assert_eq!(run["command_redacted"], serde_json::json!([]));
    let command: Vec<&str> = run["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for flag in &flags {
        assert!(
            command.contains(&flag.as_str()),
            "{flag} not in the command"
        );
        kept += 1;
    }
    let out = env.cmd(["rerun", "--dry-run", run["id"].as_str().expect("id")]);
    assert!(!stderr(&out).contains("LINEAGE_ARG"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("LINEAGE_ARG"), "{}", stdout(&out));
    eprintln!(
        "{} settings, {kept} values kept in clear (config params, --param, argv)",
        CLEAR.len()
    );
}

#[test]
fn a_value_is_redacted_where_it_was_found_secret_and_nowhere_else() {
    let env = Env::local();
    env.init_repo();
    let yaml = "model:\n  hidden_size: 2048\n  pad_token_id: 2048\ndb:\n  password: 2048\n";
    env.write("cfg.yaml", yaml);
    let id = env.record(&["-c", "cfg.yaml", "--", "true"]);
    let run = env.show(Some(&id));
    assert_eq!(run["params"]["model.hidden_size"], 2048);
    assert_eq!(run["params"]["model.pad_token_id"], 2048);
    assert_eq!(run["params"]["db.password"], "[REDACTED]");
    let stored = stored_config(&env, &run, "cfg.yaml");
    assert_eq!(
        String::from_utf8_lossy(&stored),
        "model:\n  hidden_size: 2048\n  pad_token_id: 2048\ndb:\n  password: [REDACTED]\n"
    );
}

/// The bytes the store keeps for a config: the redacted copy's blob.
fn stored_config(env: &Env, run: &Value, path: &str) -> Vec<u8> {
    let capture: String = env
        .db()
        .query_row(
            "SELECT capture FROM runs WHERE id = ?1",
            [run["id"].as_str().expect("id")],
            |r| r.get(0),
        )
        .expect("capture");
    let capture: Value = serde_json::from_str(&capture).expect("json");
    let blob = capture["config_redacted"][path]
        .as_str()
        .expect("a redacted copy")
        .trim_start_matches("blake3:")
        .to_string();
    env.db()
        .query_row("SELECT data FROM blobs WHERE hash = ?1", [blob], |r| {
            r.get(0)
        })
        .expect("the redacted copy is stored")
}

#[test]
fn redacted_files_keep_the_hash_of_their_real_bytes() {
    let env = Env::local();
    env.init_repo();
    let yaml = "lr: 0.1\napi_key: hash-test-secret-1\n";
    env.write("cfg.yaml", yaml);
    let utf16 = utf16le("password = hash-test-secret-2\r\n");
    env.write("cfg16.ini", &utf16);
    let untracked = "export HF_TOKEN=hash-test-secret-3\n";
    env.write("untracked.sh", untracked);
    // The uncommitted patch too: train.py changed.
    env.write(
        "train.py",
        "echo training\npassword = \"hash-test-secret-4\"\n",
    );
    let id = env.record(&["-c", "cfg.yaml", "-c", "cfg16.ini", "--", "true"]);
    let run = env.show(Some(&id));
    let config = |p: &str| {
        run["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["path"] == p)
            .cloned()
            .expect("config")
    };
    // The recorded hash is b3sum's of the real file, and the copy stored differs from it.
    for (path, bytes) in [("cfg.yaml", yaml.as_bytes()), ("cfg16.ini", &utf16[..])] {
        let on_disk = std::fs::read(env.path(path)).expect("read");
        assert_eq!(on_disk, bytes);
        assert_eq!(config(path)["hash"], blake3_hex(&on_disk), "{path}");
        assert_eq!(config(path)["redacted"], true, "{path}");
        let stored = stored_config(&env, &run, path);
        assert_ne!(stored, on_disk);
        assert_ne!(blake3_hex(&stored), blake3_hex(&on_disk));
    }
    // The UTF-16 copy is still UTF-16, with its secret gone.
    let stored = stored_config(&env, &run, "cfg16.ini");
    assert_eq!(stored, utf16le("password = [REDACTED]\r\n"));
    let u = run["git"]["untracked"]
        .as_array()
        .expect("untracked")
        .iter()
        .find(|u| u["path"] == "untracked.sh")
        .cloned()
        .expect("untracked.sh");
    assert_eq!(u["hash"], blake3_hex(untracked.as_bytes()));
    // The patch keeps its real hash: the code did not change, says a rerun.
    assert!(run["git"]["patch"].is_string());
    let out = env.cmd(["rerun", "--dry-run", &id]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("code: same as recorded"), "{text}");
    assert!(!text.contains("uncommitted changes differ"), "{text}");
    for secret in [
        "hash-test-secret-1",
        "hash-test-secret-2",
        "hash-test-secret-3",
        "hash-test-secret-4",
    ] {
        for (path, bytes) in env.store_files() {
            assert!(!found(&bytes, secret), "{secret} in {}", path.display());
        }
    }
    assert!(Path::new(&env.path("cfg.yaml")).exists());
}

#[test]
fn a_patch_that_held_secrets_is_stored_redacted_and_a_worktree_rerun_applies_it() {
    let env = Env::local();
    env.init_repo();
    env.write("job.sh", "echo v1 > out.txt\n");
    env.git(&["add", "job.sh"]);
    env.git(&["commit", "-q", "-m", "job"]);
    // The uncommitted change adds a secret on a line of its own.
    env.write(
        "job.sh",
        "export DB_PASSWORD=patch-secret-9\necho v2 > out.txt\n",
    );
    let id = env.record(&["-o", "out.txt", "--", "sh", "job.sh"]);
    for (path, bytes) in env.store_files() {
        assert!(!found(&bytes, "patch-secret-9"), "in {}", path.display());
    }
    // The tree moves on; the worktree gets the recorded change, its secret redacted.
    env.git(&["commit", "-q", "-am", "v2"]);
    let out = env.cmd(["rerun", &id, "--worktree", "--keep-worktree", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("held secrets"), "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced");
    let kept = std::path::PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_to_string(kept.join("job.sh")).expect("job"),
        "export DB_PASSWORD=[REDACTED]\necho v2 > out.txt\n"
    );
    std::fs::remove_dir_all(&kept).expect("cleanup");
    env.git(&["worktree", "prune"]);
}

#[test]
fn an_allow_pattern_in_a_repository_never_keeps_a_strong_secret_name_in_clear() {
    let env = Env::local();
    env.init_repo();
    env.write(
        "lineage.toml",
        "[env]\nallow = [\"*\", \"MY_EXACT_TOKEN\"]\n",
    );
    let strong = [
        ("AWS_SECRET_ACCESS_KEY", "allow-aws-secret-1"),
        ("HF_TOKEN", "allow-hf-token-2"),
        ("DB_PASSWORD", "allow-db-password-3"),
        ("WANDB_API_KEY", "allow-wandb-key-4"),
    ];
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "true"]);
    for (name, value) in strong {
        cmd.env(name, value);
    }
    // A weak name the pattern may keep, and a strong one allowed by its exact name.
    cmd.env("MY_AUTH", "oauth")
        .env("MY_EXACT_TOKEN", "exact-in-clear");
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("MY_EXACT_TOKEN recorded in clear"),
        "the run says so as it starts: {}",
        stderr(&out)
    );
    for (path, bytes) in env.store_files() {
        for (name, value) in strong {
            assert!(!found(&bytes, value), "{name} in {}", path.display());
        }
    }
    let run = env.show(None);
    for (name, _) in strong {
        assert_eq!(run["env"][name], "[REDACTED]", "{name}");
    }
    assert_eq!(run["env"]["MY_AUTH"], "oauth");
    assert_eq!(run["env"]["MY_EXACT_TOKEN"], "exact-in-clear");
    // The record says what the rules did.
    let notes: Vec<&str> = run["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("MY_EXACT_TOKEN recorded in clear")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("\"*\" not applied") && n.contains("HF_TOKEN")),
        "{notes:?}"
    );
}
