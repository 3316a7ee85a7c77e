//! The HTTP/1.x server under `trajhost serve`: small, read-only, and bounded everywhere, so
//! that nobody — the token does not matter here — can exhaust the machine it runs on.
//!
//! One thread waits on every socket at once (`mio`, epoll) and reads each request's head:
//! the request line (at most [`LINE_MAX`] bytes) and headers (at most [`HEAD_MAX`] bytes in
//! all), within [`HEAD_TIMEOUT`] of the connection's start. A head too long is answered
//! 414/431, a head too slow 408, and the connection closed: a client never holds more than
//! [`HEAD_MAX`] bytes of memory or any thread while it sends. At most [`MAX_OPEN`] connections
//! (fewer under a low open-files limit) are open at once; above that the one nearest its
//! deadline is closed. A complete head goes to
//! one of [`WORKERS`] threads (through a queue of [`QUEUE`]; `503` when full), which answers it
//! and closes the connection (`Connection: close`, no keep-alive). The body a worker sends has a
//! deadline too ([`RESPONSE_BASE`] plus one second per [`MIN_RATE`] bytes).
//!
//! Accepting never stops the server: when file descriptors run out it says so (once a minute),
//! closes the connection nearest its deadline and tries again (when there is none to close, it
//! waits [`BACKOFF`] first). At start the process's soft limit of open files is raised to its
//! hard limit.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// The request line's limit (`GET /path?query HTTP/1.1`): longer is `414`.
pub const LINE_MAX: usize = 8 * 1024;
/// The whole head's limit (request line and headers): longer is `431`.
pub const HEAD_MAX: usize = 16 * 1024;
/// Time from accepting a connection to having its whole head: slower is `408`.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once at most (fewer when the open-files limit is low).
pub const MAX_OPEN: usize = 4096;
/// Threads answering requests.
pub const WORKERS: usize = 4;
/// Complete requests waiting for a worker at most; more are answered `503`.
pub const QUEUE: usize = 64;
/// A response's deadline: this, plus one second for every `MIN_RATE` bytes of its body.
pub const RESPONSE_BASE: Duration = Duration::from_secs(30);
pub const MIN_RATE: u64 = 64 * 1024;
/// How long accepting pauses after it failed (file descriptors ran out, say).
pub const BACKOFF: Duration = Duration::from_millis(100);
/// After a refusal (`400`, `408`, `414`, `431`, `503`), what the client still sends is read and
/// dropped for this long, up to `DRAIN_BYTES`, so that it gets to read the refusal.
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 256 * 1024;
/// Connections accepted in one go before the others get their turn.
const ACCEPT_BATCH: usize = 256;
/// File descriptors kept for everything but the waiting connections (workers' files, the
/// queue's connections, stdio, the epoll instance).
const RESERVED_FDS: u64 = 256;

const LISTENER: Token = Token(0);

/// A request's head, parsed.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// As sent: `/api/runs?token=…`; not decoded.
    pub target: String,
    /// In the order sent, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name` (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    /// Besides `Content-Length` and `Connection: close`, which the server adds.
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Body,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// A file and how many of its bytes to send.
    File(File, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// Serves `listener` with `handler` until the event loop itself fails (it does not stop for
/// anything a client does, nor for running out of file descriptors).
pub fn run<H>(listener: TcpListener, handler: H) -> io::Result<()>
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let open_files = raise_open_files_limit();
    let max_open = max_open(open_files);
    let (queue, jobs) = sync_channel::<Job>(QUEUE);
    let jobs = Arc::new(Mutex::new(jobs));
    let handler = Arc::new(handler);
    for i in 0..WORKERS {
        let (jobs, handler) = (jobs.clone(), handler.clone());
        std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || work(&jobs, &*handler))?;
    }
    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut state = Loop {
        poll,
        listener,
        queue,
        max_open,
        conns: HashMap::new(),
        deadlines: BTreeSet::new(),
        next_id: 1,
        accept_again: false,
        backoff_until: None,
        warned: Warnings::default(),
    };
    state.run()
}

/// The most connections open at once, for a process that may open `open_files` files.
fn max_open(open_files: u64) -> usize {
    (open_files.saturating_sub(RESERVED_FDS) as usize).clamp(16, MAX_OPEN)
}

/// Raises the soft limit of open files to the hard one (at most 2^20) and returns the limit.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let wanted = limit.rlim_max.min(1 << 20);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return wanted;
            }
        }
    }
    limit.rlim_cur
}

/// A request whose head is complete, on its way to a worker.
struct Job {
    stream: TcpStream,
    request: Request,
}

struct Conn {
    stream: TcpStream,
    /// What has come of the head so far (at most `HEAD_MAX + 1` bytes).
    head: Vec<u8>,
    /// Where the request line ends, once a newline has come.
    line_end: Option<usize>,
    deadline: Instant,
    /// Refused: what comes in is read and dropped until `deadline`; this many bytes so far.
    drained: Option<usize>,
}

struct Loop {
    poll: Poll,
    listener: mio::net::TcpListener,
    queue: std::sync::mpsc::SyncSender<Job>,
    max_open: usize,
    conns: HashMap<usize, Conn>,
    /// Every open connection's deadline, soonest first.
    deadlines: BTreeSet<(Instant, usize)>,
    next_id: usize,
    /// Connections may still be waiting in the backlog (a batch was cut short).
    accept_again: bool,
    /// Accepting failed: try again at this time.
    backoff_until: Option<Instant>,
    warned: Warnings,
}

/// What a readable connection came to.
enum Progress {
    Waiting,
    Complete(usize),
    Refuse(u16, &'static str),
    Close,
}

impl Loop {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut ready = Vec::new();
        loop {
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            ready.clear();
            let mut listener_ready = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => listener_ready = true,
                    Token(id) => ready.push(id),
                }
            }
            // Connections already open first: a flood of new ones cannot starve them.
            for &id in &ready {
                self.readable(id);
            }
            let now = Instant::now();
            self.expire(now);
            if self.backoff_until.is_some_and(|t| t <= now) {
                self.backoff_until = None;
                listener_ready = true;
            }
            if (listener_ready || self.accept_again) && self.backoff_until.is_none() {
                self.accept(now);
            }
        }
    }

    /// Until the next deadline, the end of a backoff, or now when more connections wait.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.accept_again && self.backoff_until.is_none() {
            return Some(Duration::ZERO);
        }
        let next = self
            .deadlines
            .first()
            .map(|(t, _)| *t)
            .into_iter()
            .chain(self.backoff_until)
            .min()?;
        // Rounded up: waking a hair early would just loop.
        Some(next.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn accept(&mut self, now: Instant) {
        self.accept_again = false;
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.conns.len() >= self.max_open {
                        self.warned.warn(
                            "open",
                            &format!(
                                "serve: {} connections open, the most it keeps; closing the oldest",
                                self.conns.len()
                            ),
                        );
                        self.close_oldest();
                    }
                    self.open(stream, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before it was accepted, or a signal came: next one.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM…: make room and try again at once, or,
                    // with no waiting connection to close, after a pause.
                    self.warned.warn(
                        "accept",
                        &format!(
                            "serve: accepting a connection failed ({e}) with {} open; closing the oldest and retrying",
                            self.conns.len()
                        ),
                    );
                    if !self.close_oldest() {
                        self.backoff_until = Some(now + BACKOFF);
                        return;
                    }
                }
            }
        }
        self.accept_again = true;
    }

    fn open(&mut self, mut stream: TcpStream, now: Instant) {
        let id = self.next_id;
        self.next_id += 1;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(id), Interest::READABLE)
            .is_err()
        {
            return;
        }
        let deadline = now + HEAD_TIMEOUT;
        self.deadlines.insert((deadline, id));
        self.conns.insert(
            id,
            Conn {
                stream,
                head: Vec::new(),
                line_end: None,
                deadline,
                drained: None,
            },
        );
    }

    fn close(&mut self, id: usize) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        self.deadlines.remove(&(conn.deadline, id));
        Some(conn)
    }

    /// Closes the connection nearest its deadline; false when none is open.
    fn close_oldest(&mut self) -> bool {
        match self.deadlines.first() {
            Some(&(_, id)) => self.close(id).is_some(),
            None => false,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(mut conn) = self.close(id) else {
                continue;
            };
            if conn.drained.is_none() {
                let _ = conn
                    .stream
                    .write(&refusal(408, "the request took too long to arrive"));
            }
        }
    }

    fn readable(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let outcome = if conn.drained.is_some() {
            drain(conn)
        } else {
            read_head(conn)
        };
        match outcome {
            Progress::Waiting => {}
            Progress::Close => {
                self.close(id);
            }
            Progress::Refuse(status, reason) => self.refuse(id, status, reason),
            Progress::Complete(end) => {
                let request = match parse_head(&conn.head[..end]) {
                    Ok(request) => request,
                    Err((status, reason)) => return self.refuse(id, status, reason),
                };
                let Some(mut conn) = self.close(id) else {
                    return;
                };
                let _ = self.poll.registry().deregister(&mut conn.stream);
                match self.queue.try_send(Job {
                    stream: conn.stream,
                    request,
                }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                        let mut stream = job.stream;
                        let _ = stream.write(&refusal(503, "busy: try again in a moment"));
                        let _ = stream.shutdown(Shutdown::Write);
                    }
                }
            }
        }
    }

    /// Answers `status` at once, then drops what the client still sends for a while, so that
    /// the answer is not lost to a reset.
    fn refuse(&mut self, id: usize, status: u16, reason: &str) {
        let Some(mut conn) = self.close(id) else {
            return;
        };
        let _ = conn.stream.write(&refusal(status, reason));
        let _ = conn.stream.shutdown(Shutdown::Write);
        conn.head = Vec::new();
        conn.drained = Some(0);
        conn.deadline = Instant::now() + DRAIN_TIME;
        self.deadlines.insert((conn.deadline, id));
        self.conns.insert(id, conn);
        // What already came in has no event of its own.
        self.readable(id);
    }
}

/// Reads what has come of the head; never holds more than `HEAD_MAX + 1` bytes.
fn read_head(conn: &mut Conn) -> Progress {
    let mut chunk = [0u8; 4096];
    loop {
        let room = (HEAD_MAX + 1 - conn.head.len()).min(chunk.len());
        let n = match conn.stream.read(&mut chunk[..room]) {
            Ok(0) => return Progress::Close,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Waiting,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Progress::Close,
        };
        let from = conn.head.len();
        conn.head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&conn.head, from, &mut conn.line_end) {
            if conn.line_end.is_some_and(|l| l > LINE_MAX) {
                return Progress::Refuse(414, "the request line is too long");
            }
            return Progress::Complete(end);
        }
        if conn
            .line_end
            .map_or(conn.head.len() > LINE_MAX, |l| l > LINE_MAX)
        {
            return Progress::Refuse(414, "the request line is too long");
        }
        if conn.head.len() > HEAD_MAX {
            return Progress::Refuse(431, "the request's headers are too long");
        }
    }
}

/// Reads and drops what a refused client still sends, up to `DRAIN_BYTES`.
fn drain(conn: &mut Conn) -> Progress {
    let mut chunk = [0u8; 4096];
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Progress::Close,
            Ok(n) => {
                let drained = conn.drained.get_or_insert(0);
                *drained += n;
                if *drained > DRAIN_BYTES {
                    return Progress::Close;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Waiting,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Progress::Close,
        }
    }
}

/// Where the head ends (after its blank line), looking at the bytes from `from` on; notes
/// where the first line ends on the way.
fn head_end(head: &[u8], from: usize, line_end: &mut Option<usize>) -> Option<usize> {
    for i in from..head.len() {
        if head[i] != b'\n' {
            continue;
        }
        if line_end.is_none() {
            *line_end = Some(i);
            continue;
        }
        let blank = head[i - 1] == b'\n' || (head[i - 1] == b'\r' && head[i - 2] == b'\n');
        if blank {
            return Some(i + 1);
        }
    }
    None
}

/// `GET /x HTTP/1.1\r\nHost: …\r\n\r\n` → a request, or the status and reason to refuse it.
fn parse_head(head: &[u8]) -> Result<Request, (u16, &'static str)> {
    const BAD: (u16, &str) = (400, "a malformed request");
    let text = std::str::from_utf8(head).map_err(|_| (400, "the request is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(BAD)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(BAD);
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(BAD);
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") => return Err((505, "HTTP/1.0 and HTTP/1.1 only")),
        _ => return Err(BAD),
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or(BAD)?;
        // No space before the colon, no folded lines, nothing but a token as a name.
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(BAD);
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(BAD);
        }
        headers.push((name.to_string(), value.to_string()));
    }
    let hosts = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
        .count();
    if hosts > 1 {
        return Err((400, "more than one Host header"));
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    })
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The status line and headers of a response with a `length`-byte body.
fn head(status: u16, headers: &[(&str, &str)], length: u64) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {length}\r\nConnection: close\r\n\r\n");
    head.into_bytes()
}

/// A whole plain-text refusal, small enough to go out in one write.
fn refusal(status: u16, reason: &str) -> Vec<u8> {
    let body = format!("{reason}\n");
    let mut out = head(
        status,
        &[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
        body.len() as u64,
    );
    out.extend_from_slice(body.as_bytes());
    out
}

/// A worker: answers one queued request after another.
fn work<H>(jobs: &Mutex<Receiver<Job>>, handler: &H)
where
    H: Fn(&Request) -> Response,
{
    loop {
        // A worker that panicked while holding the lock leaves a receiver that still works.
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { return };
        let response =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&job.request)))
                .unwrap_or_else(|_| Response {
                    status: 500,
                    headers: vec![("Content-Type", "text/plain; charset=utf-8")],
                    body: Body::Bytes(b"the server failed on this request\n".to_vec()),
                });
        let stream: std::net::TcpStream = job.stream.into();
        // The client may have gone, or be too slow: either way nothing more to do.
        let _ = send(stream, response, job.request.method == "HEAD");
    }
}

fn send(stream: std::net::TcpStream, response: Response, head_only: bool) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let length = response.body.len();
    let mut out = Deadlined {
        deadline: Instant::now() + RESPONSE_BASE + Duration::from_secs(length / MIN_RATE),
        stream,
    };
    out.write_all(&head(response.status, &response.headers, length))?;
    if !head_only {
        match response.body {
            Body::Bytes(bytes) => out.write_all(&bytes)?,
            Body::File(file, len) => {
                let mut file = file.take(len);
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = file.read(&mut buffer)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buffer[..n])?;
                }
            }
        }
    }
    out.stream.shutdown(Shutdown::Write)
}

/// A socket whose writes fail once `deadline` has passed: a client reading slowly holds a
/// worker for a bounded time.
struct Deadlined {
    stream: std::net::TcpStream,
    deadline: Instant,
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Says `message` at most once a minute per `kind`: a flood does not flood the log.
#[derive(Default)]
struct Warnings {
    last: HashMap<&'static str, Instant>,
}

impl Warnings {
    fn warn(&mut self, kind: &'static str, message: &str) {
        let now = Instant::now();
        if self
            .last
            .get(kind)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
        {
            return;
        }
        self.last.insert(kind, now);
        let _ = writeln!(io::stderr(), "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(head: &[u8]) -> Option<usize> {
        head_end(head, 0, &mut None)
    }

    #[test]
    fn a_head_ends_at_its_blank_line_however_it_arrives() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(end(head), Some(head.len() - 4));
        assert_eq!(end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(end(b"GET / HTTP/1.0\r\n\r\n"), Some(18));
        assert_eq!(end(b"GET / HTTP/1.0\r\nHost: a\r\n"), None);
        // Byte by byte, as a slow client sends it.
        let mut line_end = None;
        let found = (0..head.len()).find_map(|i| head_end(&head[..=i], i, &mut line_end));
        assert_eq!(found, Some(head.len() - 4));
        assert_eq!(line_end, Some(15));
    }

    #[test]
    fn heads_are_parsed_strictly() {
        let request =
            parse_head(b"GET /api/runs?token=x HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-A:  b \r\n\r\n")
                .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/api/runs?token=x");
        assert_eq!(request.header("host"), Some("127.0.0.1:1"));
        assert_eq!(request.header("x-a"), Some("b"));
        assert_eq!(request.header("Authorization"), None);
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            b"G\xc3\xa9T / HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad).unwrap_err().0,
                400,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_head(b"GET / HTTP/2.0\r\n\r\n").unwrap_err().0, 505);
    }

    #[test]
    fn the_connection_limit_leaves_room_for_everything_else() {
        assert_eq!(max_open(1024), 768);
        assert_eq!(max_open(1 << 20), MAX_OPEN);
        assert_eq!(max_open(100), 16);
    }
}
