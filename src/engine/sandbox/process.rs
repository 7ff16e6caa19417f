//! Each sandboxed query in a process of its own, under limits the kernel enforces.
//!
//! DuckDB's `memory_limit` does not count every allocation (string functions build their
//! values outside it, the planner allocates freely), and its interrupt lands only between
//! pieces of work: a query run inside the server could take the server's memory, and every
//! user's requests, with it. The server therefore runs each query in a child process — the
//! same `agensium` binary, started with the hidden `sandbox-query` command — that gets its
//! request on standard input and writes its answer, JSON, on standard output. The child
//! starts with an empty environment (no secret of the server's reaches it), closes every file
//! it inherited, and sets these limits on itself before it runs the SQL:
//!
//! - `RLIMIT_DATA` (heap and private mappings): DuckDB's memory limit plus [`HEADROOM`]. Past
//!   it an allocation fails: DuckDB reports the query out of memory, or the child aborts;
//!   either way the answer is `TooMuchMemory` and the server is untouched.
//! - `RLIMIT_CPU`: the time limit plus two seconds of CPU, then the kernel ends the child
//!   (the child's own timer interrupts DuckDB at the time limit first, when it can).
//! - `RLIMIT_FSIZE`: no file it writes (its spill files) grows past the spill limit.
//! - `RLIMIT_CORE` zero: a crash leaves no core dump of the data.
//!
//! The server kills the child when its answer is [`GRACE`] later than the time limit, and
//! when the question is abandoned (the future is dropped: `kill_on_drop`).

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{QueryOutput, Refusal, SandboxLimits};

/// The hidden command line that makes the binary answer one query (`agensium sandbox-query`).
pub const CHILD_COMMAND: &str = "sandbox-query";
/// Memory a child may use beyond DuckDB's limit: the process itself (thread stacks,
/// allocator, DuckDB's catalog) and what DuckDB allocates outside its limit in an ordinary
/// query.
pub const HEADROOM: u64 = 512 * 1024 * 1024;
/// How much later than its time limit a child may answer before it is killed (it starts, opens
/// the file and writes its answer outside the time its timer counts).
pub const GRACE: Duration = Duration::from_secs(3);
/// Largest answer read from a child; a larger one is refused (select fewer or shorter
/// columns).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Largest request a child reads (the SQL text is at most ten thousand characters).
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;
/// What is kept of a child's standard error, to tell why it ended.
const MAX_STDERR_BYTES: usize = 16 * 1024;
/// The most a child's spill files may hold, one file or all (DuckDB's own limit is
/// `MAX_SPILL`, which this exceeds a little so that DuckDB's clear error comes first).
const MAX_FILE_BYTES: u64 = 1_100_000_000;

/// What the server sends a child.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    data: PathBuf,
    spill_dir: PathBuf,
    sql: String,
    masked: Vec<(String, String)>,
    max_rows: usize,
    timeout_ms: u64,
    memory_bytes: u64,
    process_memory_bytes: u64,
}

/// What a child answers.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Ran(QueryOutput),
    Refused(Refusal),
    /// The child could not run the query for a reason of the server's (the file is missing,
    /// DuckDB would not start): an internal error, never the query's fault.
    Failed(String),
}

/// The program that runs queries: the running binary itself by default. On Linux that is
/// `/proc/self/exe`, which still names the running binary after a package upgrade replaced
/// the file on disk.
pub fn default_program() -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("agensium"))
    }
}

/// The child's side: reads one request from standard input, runs it (the in-process
/// sandbox, [`super::run_masked`]) and writes the answer to standard output.
pub fn child_main() -> ExitCode {
    close_inherited_files();
    let mut input = Vec::new();
    if let Err(err) =
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), MAX_REQUEST_BYTES), &mut input)
    {
        eprintln!("sandbox-query: reading the request: {err}");
        return ExitCode::FAILURE;
    }
    let request: Request = match serde_json::from_slice(&input) {
        Ok(request) => request,
        Err(err) => {
            eprintln!("sandbox-query: the request is not valid: {err}");
            return ExitCode::FAILURE;
        }
    };
    let limits = SandboxLimits {
        process_memory_bytes: request.process_memory_bytes,
        ..SandboxLimits::new(
            request.max_rows,
            Duration::from_millis(request.timeout_ms),
            request.memory_bytes,
        )
    };
    // The child limits itself before it looks at the SQL: until then it runs only the
    // server's code.
    if let Err(err) = Rlimits::for_limits(&limits).apply() {
        eprintln!("sandbox-query: setting the process's limits: {err}");
        return ExitCode::FAILURE;
    }
    let answer =
        match super::run_masked(&request.data, &request.spill_dir, &request.sql, &request.masked, &limits) {
            Ok(Ok(output)) => Answer::Ran(output),
            Ok(Err(refusal)) => Answer::Refused(refusal),
            Err(err) => Answer::Failed(format!("{err:#}")),
        };
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &answer)
        .map_err(std::io::Error::from)
        .and_then(|()| std::io::Write::flush(&mut out));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sandbox-query: writing the answer: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Closes every file the child inherited beyond its standard streams: DuckDB opens the files it
/// only reads without close-on-exec, so a child would otherwise hold whatever the server was
/// reading (other users' datasets among them), out of SQL's reach but open.
fn close_inherited_files() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `close_range` closes descriptors and touches no memory; nothing in this
        // process uses a descriptor above 2 yet.
        if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } == 0 {
            return;
        }
    }
    // Kernels before 5.9, and other systems: one by one.
    let open: Vec<i32> = std::fs::read_dir("/dev/fd")
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    for fd in open.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: closing a descriptor this process does not use (the listing's own is gone).
        unsafe {
            libc::close(fd);
        }
    }
}

/// Runs `sql` over `data` in a child process started from `program` (see the module's
/// documentation), with the `masked` columns masked. Killed when dropped.
pub async fn run(
    program: &Path,
    data: PathBuf,
    spill_dir: PathBuf,
    sql: String,
    masked: Vec<(String, String)>,
    limits: &SandboxLimits,
) -> anyhow::Result<Result<QueryOutput, Refusal>> {
    // The child works and spills in a folder of this process's making, removed once the child
    // is gone (a killed child removes nothing). Paths are absolute: the child works elsewhere.
    let folder = super::SpillDir::create(&spill_dir)?;
    let work = std::fs::canonicalize(&folder.0).context("locating the sandbox's folder")?;
    let data = std::fs::canonicalize(&data).with_context(|| format!("opening dataset {}", data.display()))?;
    let request = serde_json::to_vec(&Request {
        data,
        spill_dir: work.clone(),
        sql,
        masked,
        max_rows: limits.max_rows,
        timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: limits.memory_bytes,
        process_memory_bytes: limits.process_memory_bytes,
    })
    .context("encoding the sandbox request")?;
    let mut command = tokio::process::Command::new(program);
    command
        .arg(CHILD_COMMAND)
        .env_clear()
        .current_dir(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting the query sandbox process {}", program.display()))?;
    let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let mut running = Running { child: Some(child), folder: Some(folder) };
    let (Some(mut stdin), Some(stdout), Some(stderr)) = pipes else {
        anyhow::bail!("the query sandbox process has no pipes");
    };
    let talk = async {
        let write = async {
            // A child that ended early closes its end: its exit status tells why.
            let _ = stdin.write_all(&request).await;
            drop(stdin);
        };
        let (_, answer, errors, status) = tokio::join!(
            write,
            read_capped(stdout, MAX_ANSWER_BYTES),
            read_capped(stderr, MAX_STDERR_BYTES),
            async {
                match running.child.as_mut() {
                    Some(child) => child.wait().await,
                    None => Err(std::io::Error::other("the child is gone")),
                }
            }
        );
        (answer, errors, status)
    };
    let outcome = tokio::time::timeout(limits.timeout.saturating_add(GRACE), talk).await;
    let Ok((answer, errors, status)) = outcome else {
        // (`talk`, which borrowed the child, is gone.) Killing reaps it.
        if let Some(mut child) = running.child.take() {
            let _ = child.kill().await;
        }
        return Ok(Err(Refusal::TimedOut));
    };
    // Reaped: nothing is left to kill.
    running.child = None;
    let status = status.context("waiting for the query sandbox process")?;
    let (answer, too_long) = answer.context("reading the query sandbox's answer")?;
    if too_long {
        return Ok(Err(Refusal::Invalid(format!(
            "the query's result is larger than {} MiB; select fewer or shorter columns, or fewer rows",
            MAX_ANSWER_BYTES / (1024 * 1024)
        ))));
    }
    if status.success() {
        return match serde_json::from_slice::<Answer>(&answer) {
            Ok(Answer::Ran(output)) => Ok(Ok(output)),
            Ok(Answer::Refused(refusal)) => Ok(Err(refusal)),
            Ok(Answer::Failed(message)) => Err(anyhow::anyhow!("the query sandbox failed: {message}")),
            Err(err) => Err(anyhow::Error::new(err).context("the query sandbox's answer is not valid")),
        };
    }
    let errors = errors.map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
    Ok(Err(match ended_because(&status, &errors) {
        Ending::OutOfTime => Refusal::TimedOut,
        Ending::OutOfMemory => Refusal::TooMuchMemory,
        Ending::Other => {
            // Its standard error may quote the data: only the status is told.
            return Err(anyhow::anyhow!("the query sandbox process ended with {status}"));
        }
    }))
}

/// A child and the folder it works in. Dropped while the child runs (the question was
/// abandoned), it kills the child, then waits for it and removes the folder in a task of its
/// own: removing the folder first could race the child's last writes.
struct Running {
    child: Option<tokio::process::Child>,
    folder: Option<super::SpillDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let folder = self.folder.take();
        let _ = child.start_kill();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = child.wait().await;
                    drop(folder);
                });
            }
            // (No runtime: the folder goes now; the server's start-up sweeps what is left.)
            Err(_) => drop(folder),
        }
    }
}

/// Why a child ended without an answer.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    OutOfTime,
    OutOfMemory,
    Other,
}

fn ended_because(status: &std::process::ExitStatus, errors: &str) -> Ending {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            // The CPU limit (its soft limit: the hard one is a second later).
            Some(libc::SIGXCPU) => return Ending::OutOfTime,
            // The file size limit (spill files), or the kernel's out-of-memory killer (the
            // server's own kill of a late child is answered before the status is read).
            Some(libc::SIGXFSZ | libc::SIGKILL) => return Ending::OutOfMemory,
            _ => {}
        }
    }
    let _ = status;
    // Rust's allocation failure, C++'s, and a thread that could not get its stack.
    let memory =
        ["memory allocation of", "bad_alloc", "out of memory", "Out of Memory", "failed to spawn thread"];
    if memory.iter().any(|m| errors.contains(m)) { Ending::OutOfMemory } else { Ending::Other }
}

/// Reads `reader` to its end, keeping at most `max` bytes; whether there was more.
async fn read_capped(mut reader: impl AsyncRead + Unpin, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut more = false;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, more));
        }
        let room = max - kept.len();
        if n > room {
            more = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// The kernel limits of one child.
#[derive(Debug, Clone, Copy)]
struct Rlimits {
    data: u64,
    cpu_seconds: u64,
}

impl Rlimits {
    fn for_limits(limits: &SandboxLimits) -> Rlimits {
        Rlimits {
            data: limits.process_memory_bytes,
            cpu_seconds: limits
                .timeout
                .as_secs()
                .saturating_add(u64::from(limits.timeout.subsec_nanos() > 0))
                .saturating_add(2),
        }
    }

    /// Applies the limits to the calling process (the child, before it looks at the SQL).
    fn apply(self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            // (A macro: the resource's type differs between C libraries.) A limit is never
            // raised past the hard limit the server itself runs under (that would fail).
            macro_rules! set {
                ($resource:expr, $soft:expr, $hard:expr) => {{
                    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                    // SAFETY: `getrlimit` writes the struct it is given and nothing else.
                    if unsafe { libc::getrlimit($resource, &mut current) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let hard = std::cmp::min($hard, current.rlim_max);
                    let limit = libc::rlimit { rlim_cur: std::cmp::min($soft, hard), rlim_max: hard };
                    // SAFETY: `setrlimit` reads the struct it is given and nothing else.
                    if unsafe { libc::setrlimit($resource, &limit) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }};
            }
            set!(libc::RLIMIT_DATA, self.data, self.data);
            set!(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds.saturating_add(1));
            set!(libc::RLIMIT_FSIZE, MAX_FILE_BYTES, MAX_FILE_BYTES);
            set!(libc::RLIMIT_CORE, 0, 0);
        }
        Ok(())
    }
}
