//! `kinesin serve`: configuration (flags, environment, TOML), start-up, signals, shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

use kinesin_log::Durability;
use kinesin_service::{Clock, Service, ServiceConfig, StorageKind, TICK_INTERVAL_MS};

/// Every flag is also `KINESIN_<NAME>` in the environment and a key of the `--config` TOML file
/// (e.g. `data-dir = "/var/lib/kinesin"`). Precedence: flag, environment, file, default.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of these settings.
    #[arg(long, env = "KINESIN_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4567].
    #[arg(long, env = "KINESIN_LISTEN")]
    listen: Option<String>,
    /// Where streams and records live [default: ./kinesin-data].
    #[arg(long, env = "KINESIN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep data in a temporary directory removed at exit (for tests).
    #[arg(long, env = "KINESIN_EPHEMERAL")]
    ephemeral: Option<Option<bool>>,
    /// `local` (streams and records in the data directory) or `memory` (in process memory only:
    /// nothing is written to the data directory, everything is gone at exit; the fastest mode
    /// for tests) [default: local].
    #[arg(long, env = "KINESIN_STORAGE")]
    storage: Option<String>,
    /// Region in ARNs [default: us-east-1].
    #[arg(long, env = "KINESIN_REGION")]
    region: Option<String>,
    /// Account id in ARNs and messages [default: 000000000000].
    #[arg(long, env = "KINESIN_ACCOUNT_ID")]
    account_id: Option<String>,
    /// How long a new stream stays CREATING, in ms (AWS: seconds) [default: 0, ACTIVE at once].
    #[arg(long, env = "KINESIN_CREATE_STREAM_MS")]
    create_stream_ms: Option<u64>,
    /// How long a deleted stream stays DELETING, in ms [default: 0, gone at once].
    #[arg(long, env = "KINESIN_DELETE_STREAM_MS")]
    delete_stream_ms: Option<u64>,
    /// How long an updated stream stays UPDATING, in ms; a reshard takes effect when it ends
    /// [default: 0, at once].
    #[arg(long, env = "KINESIN_UPDATE_STREAM_MS")]
    update_stream_ms: Option<u64>,
    /// Stream to create at start if missing, NAME or NAME:SHARDS (repeatable; env: comma-separated).
    #[arg(long = "init-stream", env = "KINESIN_INIT_STREAM", value_delimiter = ',')]
    init_stream: Vec<String>,
    /// `fsync` (answer once records are on disk) or `interval:<ms>` (answer at once, sync every ms)
    /// [default: fsync].
    #[arg(long, env = "KINESIN_DURABILITY")]
    durability: Option<String>,
    /// Account limit on open shards [default: 500].
    #[arg(long, env = "KINESIN_SHARD_LIMIT")]
    shard_limit: Option<u64>,
    /// `aws` (enforce Kinesis's throughput and call-rate limits) or `off` [default: aws].
    #[arg(long, env = "KINESIN_LIMITS")]
    limits: Option<String>,
    /// Per-shard limit overrides, e.g. `write-mib=2,write-records=2000,read-mib=4,read-calls=10`.
    #[arg(long, env = "KINESIN_SHARD_LIMITS")]
    shard_limits: Option<String>,
    /// UpdateShardCount calls per stream per rolling 24 hours [default: 10].
    #[arg(long, env = "KINESIN_SCALINGS_PER_DAY")]
    scalings_per_day: Option<u32>,
    /// Log filter, e.g. `info` or `kinesin=debug` [default: info].
    #[arg(long, env = "KINESIN_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log lines as `text` (human-readable) or `json` (one JSON object per line) [default: text].
    #[arg(long, env = "KINESIN_LOG_FORMAT")]
    log_format: Option<String>,
    /// Address of an HTTPS listener (HTTP/1.1 and HTTP/2, ALPN h2 and http/1.1) [default: none].
    #[arg(long, env = "KINESIN_TLS_LISTEN")]
    tls_listen: Option<String>,
    /// PEM certificate chain for --tls-listen [default: a self-signed one in <data-dir>/tls/].
    #[arg(long, env = "KINESIN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KINESIN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TOML file of principals (`[[principal]]` with arn, access_key_id, secret_access_key, optional
    /// session_token); every request must then carry a valid SigV4 signature of one of them
    /// [default: none, any well-formed signature is accepted].
    #[arg(long, env = "KINESIN_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Web page origins whose browser may call the API (CORS): `*`, `loopback` (pages served from
    /// this machine), or a comma-separated list such as `http://localhost:3000` [default: `*` with
    /// --credentials, as AWS; `loopback` without, since then any signature is accepted].
    #[arg(long, env = "KINESIN_CORS_ORIGINS")]
    cors_origins: Option<String>,
    /// Connections served at once; more wait in the accept queue [default: 4096].
    #[arg(long, env = "KINESIN_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections one client address (an IPv6 /64) may hold at once; more are answered 503 and
    /// closed, so a flood from one address cannot take every slot [default: a quarter of
    /// --max-connections, at least 64].
    #[arg(long, env = "KINESIN_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a request's headers (HTTP/1.1; also the longest wait for the
    /// next request on a keep-alive connection) before the connection is closed [default: 30].
    #[arg(long, env = "KINESIN_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may stay idle (no request in flight, no bytes) before it is closed
    /// [default: 120].
    #[arg(long, env = "KINESIN_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's whole body once its headers are in (a slow-body
    /// client holds memory meanwhile); later: 408 and the connection closed [default: 60].
    #[arg(long, env = "KINESIN_BODY_READ_TIMEOUT_SECS")]
    body_read_timeout_secs: Option<u64>,
    /// File of the audit trail: one JSON line per control-plane call and per authentication or
    /// authorization failure [default: none].
    #[arg(long, env = "KINESIN_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Size at which the audit log rotates to <file>.1 [default: 104857600].
    #[arg(long, env = "KINESIN_AUDIT_MAX_BYTES")]
    audit_max_bytes: Option<u64>,
    /// Rotated audit files kept [default: 5].
    #[arg(long, env = "KINESIN_AUDIT_KEEP")]
    audit_keep: Option<u32>,
    /// Also audit data-plane calls (PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard).
    #[arg(long, env = "KINESIN_AUDIT_DATA_PLANE")]
    audit_data_plane: Option<Option<bool>>,
    /// File for authentication failures and malformed requests, rotated like the audit log but
    /// apart from it, so noise never rotates the trail away [default: <stem>-noise.<ext> beside
    /// --audit-log].
    #[arg(long, env = "KINESIN_AUDIT_NOISE_LOG")]
    audit_noise_log: Option<PathBuf>,
    /// Audit bytes one caller (principal, or source address when unverified) may write per
    /// second in each file; beyond it and its burst, its entries are summarized once a minute
    /// [default: (keep + 1) × max bytes / 86400: a day to rotate a full trail away].
    #[arg(long, env = "KINESIN_AUDIT_CALLER_BYTES_PER_SEC")]
    audit_caller_bytes_per_sec: Option<u64>,
    /// Audit bytes one caller may write at once before its rate applies [default: 1% of
    /// (keep + 1) × max bytes, at least 262144].
    #[arg(long, env = "KINESIN_AUDIT_CALLER_BURST_BYTES")]
    audit_caller_burst_bytes: Option<u64>,
    /// TOML keyring of KMS master keys for StartStreamEncryption (`[[key]]` with id, arn,
    /// aliases, material or material_file, enabled, state, deny; README "Encryption at rest")
    /// [default: only alias/aws/kinesis, made on first start in <data-dir>/kms/].
    #[arg(long, env = "KINESIN_KMS_KEYRING")]
    kms_keyring: Option<PathBuf>,
    /// The same TOML as --kms-keyring, inline (keys added to the file's).
    #[arg(long, env = "KINESIN_KMS_KEYS")]
    kms_keys: Option<String>,
}

impl ServeArgs {
    /// Fills what the command line and environment left open from the config file.
    fn merge(mut self, file: ServeArgs) -> ServeArgs {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = file.$f; } )* };
        }
        fill!(
            listen,
            data_dir,
            ephemeral,
            storage,
            region,
            account_id,
            create_stream_ms,
            delete_stream_ms,
            update_stream_ms,
            durability,
            shard_limit,
            limits,
            shard_limits,
            scalings_per_day,
            log_level,
            log_format
        );
        fill!(tls_listen, tls_cert, tls_key, credentials, cors_origins);
        fill!(
            max_connections,
            max_connections_per_ip,
            header_read_timeout_secs,
            idle_timeout_secs,
            body_read_timeout_secs
        );
        fill!(audit_log, audit_max_bytes, audit_keep, audit_data_plane);
        fill!(audit_noise_log, audit_caller_bytes_per_sec, audit_caller_burst_bytes);
        fill!(kms_keyring, kms_keys);
        if self.init_stream.is_empty() {
            self.init_stream = file.init_stream;
        }
        self
    }
}

fn parse_durability(s: &str) -> Result<Durability> {
    if s == "fsync" {
        return Ok(Durability::Fsync);
    }
    if let Some(ms) = s.strip_prefix("interval:") {
        let ms: u64 = ms.parse().with_context(|| {
            format!("--durability {s}: the interval must be milliseconds, e.g. interval:100")
        })?;
        if ms == 0 {
            bail!("--durability interval:0 is not an interval; use fsync");
        }
        return Ok(Durability::Interval(Duration::from_millis(ms)));
    }
    bail!("--durability {s}: expected `fsync` or `interval:<ms>`")
}

fn parse_init_stream(s: &str) -> Result<(String, i64)> {
    match s.split_once(':') {
        None => Ok((s.to_string(), 1)),
        Some((name, n)) => {
            let n: i64 =
                n.parse().with_context(|| format!("--init-stream {s}: expected NAME or NAME:SHARDS"))?;
            Ok((name.to_string(), n))
        }
    }
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let args = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let file: ServeArgs =
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
            args.merge(file)
        }
        None => args,
    };
    init_logging(args.log_level.as_deref().unwrap_or("info"), args.log_format.as_deref().unwrap_or("text"))?;

    let ephemeral = matches!(args.ephemeral, Some(None) | Some(Some(true)));
    if ephemeral && args.data_dir.is_some() {
        bail!("--ephemeral and --data-dir exclude each other: --ephemeral uses a temporary directory");
    }
    let temp = if ephemeral { Some(tempfile::Builder::new().prefix("kinesin-").tempdir()?) } else { None };
    let data_dir = match &temp {
        Some(t) => t.path().to_path_buf(),
        None => args.data_dir.clone().unwrap_or_else(|| PathBuf::from("kinesin-data")),
    };
    let durability_text = args.durability.clone().unwrap_or_else(|| "fsync".into());
    let storage = match &args.storage {
        Some(text) => StorageKind::parse(text).map_err(anyhow::Error::msg)?,
        None => StorageKind::Local,
    };
    let memory = storage == StorageKind::Memory;
    let mut cfg = ServiceConfig::new(data_dir.clone());
    cfg.storage = storage;
    cfg.durability = parse_durability(&durability_text)?;
    if let Some(r) = &args.region {
        cfg.region = r.clone();
    }
    if let Some(a) = &args.account_id {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id {a}: an AWS account id is 12 digits");
        }
        cfg.account_id = a.clone();
    }
    cfg.create_stream_ms = args.create_stream_ms.unwrap_or(cfg.create_stream_ms);
    cfg.delete_stream_ms = args.delete_stream_ms.unwrap_or(cfg.delete_stream_ms);
    cfg.update_stream_ms = args.update_stream_ms.unwrap_or(cfg.update_stream_ms);
    cfg.shard_limit = args.shard_limit.unwrap_or(cfg.shard_limit);
    if let Some(mode) = &args.limits {
        cfg.limits = kinesin_service::limits::LimitsConfig::parse_mode(mode).map_err(anyhow::Error::msg)?;
    }
    if let Some(o) = &args.shard_limits {
        cfg.limits.apply_overrides(o).map_err(anyhow::Error::msg)?;
    }
    cfg.scalings_per_day = args.scalings_per_day.unwrap_or(cfg.scalings_per_day);
    cfg.kms_keyring =
        kinesin_service::kms::KeyringConfig { file: args.kms_keyring.clone(), inline: args.kms_keys.clone() };
    let init: Vec<(String, i64)> =
        args.init_stream.iter().map(|s| parse_init_stream(s)).collect::<Result<_>>()?;
    let listen = args.listen.clone().unwrap_or_else(|| "127.0.0.1:4567".into());
    if args.tls_listen.is_none() && (args.tls_cert.is_some() || args.tls_key.is_some()) {
        bail!("--tls-cert and --tls-key need --tls-listen ADDR: the address of the HTTPS listener");
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        bail!("--tls-cert and --tls-key go together: the PEM certificate chain and its private key");
    }

    let mut options = kinesin_server::ServerOptions::default();
    if let Some(path) = &args.credentials {
        let credentials = kinesin_server::auth::Credentials::load(path).map_err(|e| {
            // Name the flag; the loader's own messages start with the path, said once here.
            let shown = path.display().to_string();
            let e = match e.strip_prefix(&format!("cannot read {shown}: ")) {
                Some(why) => format!("cannot read the file: {why}"),
                None => e.strip_prefix(&format!("{shown}: ")).map(str::to_string).unwrap_or(e),
            };
            anyhow::anyhow!("--credentials {shown}: {e}")
        })?;
        tracing::info!("signatures verified against {} principals of {}", credentials.len(), path.display());
        options.credentials = Some(credentials);
    }

    if let Some(origins) = &args.cors_origins {
        options.cors_origins =
            Some(kinesin_server::cors::Origins::parse(origins).map_err(anyhow::Error::msg)?);
    }

    options.limits = server_limits(&args)?;
    if let Some(path) = &args.audit_log {
        use kinesin_server::audit;
        let file_bytes_max = args.audit_max_bytes.unwrap_or(audit::FILE_BYTES_MAX_DEFAULT);
        let keep = args.audit_keep.unwrap_or(audit::KEEP_DEFAULT);
        let default_budget = audit::Budget::for_trail(file_bytes_max, keep);
        let audit = audit::AuditConfig {
            path: path.clone(),
            noise_path: args.audit_noise_log.clone().unwrap_or_else(|| audit::default_noise_path(path)),
            file_bytes_max,
            keep,
            data_plane: matches!(args.audit_data_plane, Some(None) | Some(Some(true))),
            budget: audit::Budget {
                bytes_per_sec: args.audit_caller_bytes_per_sec.unwrap_or(default_budget.bytes_per_sec),
                burst_bytes: args.audit_caller_burst_bytes.unwrap_or(default_budget.burst_bytes),
            },
        };
        if audit.file_bytes_max == 0 {
            bail!("--audit-max-bytes 0: give the size at which the audit log rotates, e.g. 104857600");
        }
        if audit.budget.burst_bytes < audit::LINE_BYTES_MAX as u64 {
            bail!(
                "--audit-caller-burst-bytes {}: give at least {} (the longest audit line), or every \
                 entry of that size would only be counted",
                audit.budget.burst_bytes,
                audit::LINE_BYTES_MAX
            );
        }
        tracing::info!(
            "audit trail in {} ({}rotated at {} bytes, {} kept; authentication failures and malformed \
             requests in {}; each caller may write {} bytes/s after a burst of {} bytes, then is summarized)",
            path.display(),
            if audit.data_plane { "data plane included, " } else { "" },
            audit.file_bytes_max,
            audit.keep,
            audit.noise_path.display(),
            audit.budget.bytes_per_sec,
            audit.budget.burst_bytes,
        );
        options.audit = Some(audit::open(audit).map_err(anyhow::Error::msg)?);
    }

    // An unusable data directory is a configuration error: say so, naming the flag, before
    // anything (the KMS keyring below) tries to write into it.
    // With --storage memory nothing is written there.
    if temp.is_none() && !memory {
        check_data_dir(&data_dir, args.data_dir.is_some())?;
    }
    // A bad keyring is a configuration error like a bad flag: refuse it before listening (the
    // data itself is recovered after binding).
    let key_dir = if memory { None } else { Some(cfg.data_dir.as_path()) };
    kinesin_service::kms::Kms::load(&cfg.kms_keyring, key_dir, &cfg.region, &cfg.account_id)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // A self-signed certificate for --tls-listen goes to <data-dir>/tls, or with --storage
    // memory to a temporary directory removed at exit.
    let tls_temp = if memory && args.tls_listen.is_some() && args.tls_cert.is_none() {
        Some(tempfile::Builder::new().prefix("kinesin-tls-").tempdir()?)
    } else {
        None
    };
    let tls_dir = tls_temp.as_ref().map_or_else(|| data_dir.join("tls"), |t| t.path().to_path_buf());
    // Bind first: while the data is recovered, /health/live answers and API requests wait.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (listener, tls) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let api = base_url("http", listener.local_addr()?);
        tracing::info!(
            listen = %api,
            console = %format!("{api}/console/"),
            data_dir = %data_dir.display(),
            durability = %durability_text,
            ephemeral,
            storage = storage.as_str(),
            "kinesin listening on {api} (console {api}/console/), {}",
            if memory {
                "data in memory only (--storage memory: nothing written to disk, gone at exit)".to_string()
            } else {
                format!(
                    "data in {} ({}{})",
                    data_dir.display(),
                    if ephemeral { "ephemeral, " } else { "" },
                    durability_text
                )
            },
        );
        let tls = match &args.tls_listen {
            Some(tls_listen) => {
                let cert_key = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
                let (config, source) = kinesin_server::tls::server_config(cert_key, &tls_dir)?;
                let listener = tokio::net::TcpListener::bind(tls_listen)
                    .await
                    .with_context(|| format!("cannot listen on {tls_listen} (--tls-listen)"))?;
                let what = match &source {
                    kinesin_server::tls::CertSource::Files { .. } => "certificate",
                    kinesin_server::tls::CertSource::Generated { .. } => {
                        "self-signed certificate (generated)"
                    }
                    kinesin_server::tls::CertSource::Reused { .. } => "self-signed certificate",
                };
                let api = base_url("https", listener.local_addr()?);
                tracing::info!(
                    listen = %api,
                    "kinesin listening on {api} (console {api}/console/), {what} {}",
                    source.cert_path().display()
                );
                Some(kinesin_server::TlsListener { listener, config })
            }
            None => None,
        };
        anyhow::Ok((listener, tls))
    })?;
    let slot = kinesin_server::obs::ServiceSlot::new();
    let server =
        runtime.spawn(kinesin_server::serve_slot(listener, tls, slot.clone(), options, shutdown_signal()));

    let service = Arc::new(Service::open(cfg, Clock::system()).with_context(|| {
        if memory {
            "cannot start the service (--storage memory)".to_string()
        } else {
            format!("cannot open the data directory {}", data_dir.display())
        }
    })?);
    for (name, shards) in init {
        service
            .init_stream(&name, shards)
            .map_err(|e| anyhow::anyhow!("--init-stream {name}:{shards}: {e}"))?;
    }
    slot.fill(service.clone());
    tracing::info!(
        streams = service.stream_count(),
        started_ms = started.elapsed().as_millis() as u64,
        "kinesin ready ({} streams, started in {} ms)",
        service.stream_count(),
        started.elapsed().as_millis()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let service = service.clone();
        let stop = stop.clone();
        std::thread::Builder::new().name("kinesin-tick".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(TICK_INTERVAL_MS));
                service.tick();
            }
        })?
    };
    let result = runtime.block_on(server).context("the server task failed");
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    service.shutdown();
    tracing::info!("kinesin stopped");
    drop(temp);
    drop(tls_temp);
    result
}

/// The URL a user opens for a listening address: a wildcard address (all interfaces) is shown
/// as the loopback one, which works from the same machine.
fn base_url(scheme: &str, addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// Creates the data directory if needed and checks that kinesin can write in it, so that a bad
/// `--data-dir` is reported as such instead of by the first component that writes there.
fn check_data_dir(dir: &std::path::Path, from_flag: bool) -> Result<()> {
    let named = if from_flag {
        format!("--data-dir {}", dir.display())
    } else {
        format!("the data directory {} (the default; choose another with --data-dir)", dir.display())
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        bail!("{named}: cannot create the directory: {e}");
    }
    if !dir.is_dir() {
        bail!("{named}: not a directory");
    }
    let probe = dir.join(format!(".kinesin-write-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"ok").and_then(|_| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        bail!("{named}: kinesin cannot write in it: {e}; give a directory the server's user can write");
    }
    Ok(())
}

fn server_limits(args: &ServeArgs) -> Result<kinesin_server::ServerLimits> {
    let mut limits = kinesin_server::ServerLimits::default();
    if let Some(n) = args.max_connections {
        if n == 0 {
            bail!("--max-connections 0 would serve nobody; give at least 1");
        }
        limits.connections_max = n;
    }
    if let Some(n) = args.max_connections_per_ip {
        if n == 0 {
            bail!("--max-connections-per-ip 0 would serve nobody; give at least 1");
        }
        limits.connections_per_ip_max = Some(n);
    }
    if let Some(s) = args.header_read_timeout_secs {
        if s == 0 {
            bail!("--header-read-timeout-secs 0: give the seconds a client has to send its headers");
        }
        limits.header_read_timeout = Duration::from_secs(s);
    }
    if let Some(s) = args.idle_timeout_secs {
        if s == 0 {
            bail!("--idle-timeout-secs 0: give the seconds an idle connection is kept");
        }
        limits.idle_timeout = Duration::from_secs(s);
    }
    if let Some(s) = args.body_read_timeout_secs {
        if s == 0 {
            bail!("--body-read-timeout-secs 0: give the seconds a client has to send a request body");
        }
        limits.body_read_timeout = Duration::from_secs(s);
    }
    Ok(limits)
}

/// Installs the log subscriber: `filter` as in `RUST_LOG`, lines as text or JSON objects.
fn init_logging(filter: &str, format: &str) -> Result<()> {
    let env_filter =
        tracing_subscriber::EnvFilter::try_new(filter).with_context(|| format!("--log-level {filter}"))?;
    // Colours only on a terminal: log files and CI output stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        "text" => builder.init(),
        "json" => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
        other => bail!("--log-format {other}: expected `text` or `json`"),
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}
