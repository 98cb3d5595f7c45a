//! `zoi-mirror serve DIR`.

use anyhow::Result;

use crate::cli::ServeArgs;
use crate::error::{ErrorKind, Exit, Failure, fail, io_failure};
use crate::mirror::serve;
use crate::output::{self, Format};

pub fn run(args: &ServeArgs, format: Format) -> Result<Exit> {
    if !args.dir.is_dir() {
        return fail(
            Failure::new(
                ErrorKind::Usage,
                format!("{} is not a directory", args.dir.display()),
            )
            .hint("pass the binary tree (or bundle output) directory to serve"),
        );
    }
    let addr = args.listen_addr().map_err(|msg| {
        Failure::new(ErrorKind::Usage, msg)
            .hint("e.g. --bind 127.0.0.1:8080, or --bind 127.0.0.1 --port 8080")
    })?;
    if args.index_on_start {
        let r = crate::mirror::index::index_tree(&args.dir)?;
        output::info(format!(
            "indexed {}: {} written, {} unchanged, {} errors",
            args.dir.display(),
            r.totals.written,
            r.totals.unchanged,
            r.totals.errors
        ));
    }
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Failure::new(ErrorKind::Bind, format!("cannot listen on {addr}: {e}"))
                .hint("choose another --port (0 picks a free one)")
        })?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}/");
        match format {
            Format::Json => output::json(&serde_json::json!({"url": url, "root": args.dir}))?,
            Format::Human => output::stdout_line(&url),
        }
        crate::client::failpoint("serving");
        output::info(format!(
            "serving {} at {url} (Ctrl-C to stop)",
            args.dir.display()
        ));
        let opts = serve::Options {
            root: args.dir.clone(),
            list: args.list,
            // `--quiet` silences the log with every other log line.
            access_log: Some(access_log_line),
        };
        serve::serve(listener, &opts, serve::termination())
            .await
            .map_err(|e| io_failure("serve", &args.dir, &e))?;
        output::info("stopped");
        anyhow::Ok(())
    })?;
    Ok(Exit::Ok)
}

/// One access log line: a log on stderr (so `--quiet` silences it).
fn access_log_line(line: &str) {
    output::info(line);
}
