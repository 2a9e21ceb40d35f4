//! `sluice serve`: open the stream registry and the function store, serve the Kinesis and
//! Lambda APIs, run the event source mappings and maintenance.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_aws::{Credentials, Gateway};
use sluice_kinesis::Service;
use sluice_lambda::{Lambda, LambdaOptions};
use sluice_runtime::Runtimes;
use sluice_streams::{Streams, SystemClock};

use crate::config::Config;
use crate::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // --sync goes through the table like the file's `sync`; the other two need no checks.
    let flags: Vec<_> = args
        .sync
        .map(|s| ("--sync", "storage.sync", toml::Value::String(s)))
        .into_iter()
        .collect();
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok(), &flags)?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    let prometheus = crate::observe::install()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize()?;
    let streams_config = config.streams_config();
    let streams =
        tokio::task::spawn_blocking(move || Streams::open(streams_config, Arc::new(SystemClock)))
            .await?
            .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let streams = Arc::new(streams);
    let credentials = Credentials::new(
        config
            .access_keys
            .iter()
            .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone())),
    );
    let auth = if credentials.is_enabled() {
        "SigV4 required"
    } else {
        "any credentials accepted"
    };
    let kinesis = Arc::new(Service::new(streams.clone())?);
    // The lake (sluice-lake): objects under <data_dir>/lake or on the S3-compatible store [lake]
    // names; the S3 API below serves it, mappings' on-failure destinations write into it.
    let lake = sluice_lake::Lake::open(&config.lake, &data_dir).context("[lake]")?;
    // [[keys]]: server-side encryption's key files (relative to the configuration file), read
    // and checked now, so a missing or malformed key stops the start.
    lake.set_keyring(
        sluice_lake::Keyring::load(
            &config.keys,
            args.config.as_deref().and_then(|p| p.parent()),
        )
        .map_err(|e| anyhow::anyhow!("[[keys]] {e}"))?,
    );
    let lambda = {
        let clock = streams.clone();
        // Handlers get credentials sluice accepts, for AWS SDKs calls back to it.
        let handler_access_key = config
            .access_keys
            .first()
            .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
            .unwrap_or_else(|| ("test".into(), "test".into()));
        // A declared function's relative code_dir is relative to the configuration file.
        let mut lambda_config = config.lambda.clone();
        if let Some(dir) = args.config.as_deref().and_then(|p| p.parent()) {
            for f in &mut lambda_config.functions {
                if f.code_dir.is_relative() {
                    f.code_dir = dir.join(&f.code_dir);
                }
            }
        }
        let options = LambdaOptions {
            config: lambda_config,
            data_dir: data_dir.clone(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            credentials: credentials.clone(),
            handler_access_key,
            now_ms: Arc::new(move || clock.now_ms()),
            streams: streams.clone(),
            lake: lake.clone(),
        };
        let runtimes = Arc::new(Runtimes::new(config.lambda.runtimes_config()));
        tokio::task::spawn_blocking(move || Lambda::open(options, runtimes))
            .await?
            .context("opening the Lambda function store")?
    };
    // [[processors]]: checked and compiled (program_file read, relative to the configuration
    // file) before the server listens, so a bad program stops the start; started once it serves.
    let processors = sluice_jq::Processors::prepare(
        &config.processors,
        args.config.as_deref().and_then(|p| p.parent()),
        &config.region,
        &config.account_id,
    )
    .context("[[processors]]")?;
    let observer = crate::observe::Observer {
        prometheus: prometheus.clone(),
        streams: streams.clone(),
        kinesis: kinesis.clone(),
        data_dir: data_dir.clone(),
        started: std::time::Instant::now(),
    };
    // ---- The lake and its S3 API (sluice-lake, sluice-s3): objects under <data_dir>/lake or on
    // the S3-compatible store [lake] names, served on this port as the gateway's fallback. ----
    let s3 = sluice_s3::S3::new(
        lake.clone(),
        credentials.clone(),
        config
            .access_keys
            .iter()
            .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone())),
        sluice_s3::S3Options {
            region: config.region.clone(),
            virtual_host_domains: config.lake.virtual_host_domains.clone(),
            now_ms: {
                let clock = streams.clone();
                Arc::new(move || clock.now_ms())
            },
        },
    );
    {
        // Temporary files a crash left behind.
        let lake = lake.clone();
        tokio::spawn(async move {
            if let Err(e) = lake.sweep().await {
                tracing::warn!(error = %e, "sweeping the lake's temporary files");
            }
        });
    }
    // ---- end lake ----
    // ---- Firehose (sluice-firehose): delivery streams, their durable buffers under
    // <data_dir>/firehose, delivery into the lake above; transformation functions run on
    // sluice's Lambda. ----
    let firehose = {
        let options = sluice_firehose::FirehoseOptions {
            config: config.firehose.clone(),
            data_dir: data_dir.clone(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            log: config.storage.clone(),
            streams: streams.clone(),
            lake: lake.clone(),
            clock: Arc::new(SystemClock),
            // [[tables]]: the schemas of record format conversion (DataFormatConversion).
            tables: config.tables.clone(),
        };
        let firehose =
            tokio::task::spawn_blocking(move || sluice_firehose::Firehose::open(options))
                .await?
                .context("opening the delivery streams")?;
        firehose.set_transformer(Arc::new(LambdaTransformer(Arc::downgrade(&lambda))));
        firehose
    };
    // ---- end Firehose ----
    let router = {
        let clock = streams.clone();
        let mut gateway = Gateway::new(credentials, Arc::new(move || clock.now_ms())).json(kinesis);
        gateway = gateway.json(firehose.clone());
        let lambda_router = lambda.router();
        for prefix in sluice_lambda::PATH_PREFIXES {
            gateway = gateway.rest(prefix, lambda_router.clone());
        }
        gateway
            .routes(crate::observe::routes(Arc::new(observer)))
            // S3: whatever no other service claims (lake).
            .fallback(s3.router())
            .cors(config.cors.clone())
            .into_router()
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Handlers reach sluice on the loopback when it listens on every address.
    let handler_addr = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    lambda.set_endpoint_url(format!("http://{handler_addr}"));
    lambda.start_mappings();
    // Firehose: delivery tasks, and its time-driven work (deletions, buffer retention).
    firehose.start();
    let firehose_maintenance = {
        let firehose = firehose.clone();
        let every = Duration::from_millis(config.streams.maintenance_interval_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let f = firehose.clone();
                let _ = tokio::task::spawn_blocking(move || f.tick()).await;
            }
        })
    };
    println!("sluice listening on http://{addr}");
    println!("sluice data directory: {}", data_dir.display());
    tracing::info!(%addr, data_dir = %data_dir.display(), sync = ?config.storage.sync, auth, functions = lambda.function_count(), mappings = lambda.mapping_count(), "sluice started");

    let processors = processors.start(streams.clone(), lake.clone());
    let upkeep = crate::observe::spawn_upkeep(prometheus);
    let maintenance = {
        let streams = streams.clone();
        let every = Duration::from_millis(config.streams.maintenance_interval_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let s = streams.clone();
                let _ = tokio::task::spawn_blocking(move || s.tick()).await;
            }
        })
    };

    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tls = match &config.tls {
        Some(t) => {
            let tls = sluice_aws::tls_config(&t.cert_file, &t.key_file)
                .map_err(|e| anyhow::anyhow!("tls: {e}"))?;
            let l = tokio::net::TcpListener::bind(t.listen)
                .await
                .with_context(|| format!("listening on {}", t.listen))?;
            println!("sluice listening on https://{}", l.local_addr()?);
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(sluice_aws::serve(
                l,
                router.clone(),
                Some(tls),
                config.listener,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    sluice_aws::serve(listener, router, None, config.listener, async move {
        shutdown(term).await;
        let _ = stop_tx.send(true);
    })
    .await?;
    if let Some(t) = tls {
        let _ = t.await;
    }
    maintenance.abort();
    upkeep.abort();
    // Processors write to streams: stopped before the streams close.
    processors.stop().await;
    // Firehose: each delivery task finishes the object it is writing; what is still
    // buffered stays in the durable buffer for the next start.
    firehose_maintenance.abort();
    firehose.shutdown().await;
    lambda.shutdown().await;
    tracing::info!("shutting down: finishing queued writes");
    tokio::task::spawn_blocking(move || streams.close()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or on SIGTERM (`term`, installed at startup so a failure to install it
/// is a startup error).
async fn shutdown(mut term: tokio::signal::unix::Signal) {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// Firehose's transformation functions, run on sluice's Lambda (held weakly: a delivery task
/// never keeps Lambda alive).
struct LambdaTransformer(std::sync::Weak<Lambda>);

impl sluice_firehose::RecordTransformer for LambdaTransformer {
    fn transform<'a>(
        &'a self,
        function_arn: &'a str,
        payload: axum::body::Bytes,
    ) -> sluice_firehose::BoxFuture<'a, Result<axum::body::Bytes, String>> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(lambda) => lambda.invoke_json(function_arn, payload).await,
                None => Err("Lambda is shutting down".into()),
            }
        })
    }
}
