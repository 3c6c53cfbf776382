//! [`FakeHub`]: a Hugging Face Hub on 127.0.0.1 for tests, speaking the part of the protocol
//! `hf-hub` uses: the model-info API, `resolve` URLs with `ETag`/`X-Linked-Etag`,
//! `X-Linked-Size` and `X-Repo-Commit`, a redirect of large (LFS) files to a content host,
//! relative redirects of renamed repositories, and Range requests answered with 206 and
//! `Content-Range`. Faults can be switched on: an error status, a connection dropped mid-file,
//! a body shorter than announced, wrong bytes.
//!
//! Hand-written on `std::net` rather than on an HTTP server crate: the faults it must produce
//! (a connection closed after a given byte, a body that contradicts its headers) are what
//! such crates exist to prevent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET /gpt2/resolve/main/config.json`, say: method and path.
    pub line: String,
    /// Header names (lowercase) and values.
    pub headers: HashMap<String, String>,
}

/// A misbehaviour to apply to the next matching requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Every request answers this status.
    Status(u16),
    /// Downloads of `file` (requests with a Range from 0) send `bytes` bytes of the body and
    /// close the connection, `times` times.
    DropAfter {
        /// The file name.
        file: String,
        /// Body bytes sent before closing.
        bytes: usize,
        /// How many downloads to break.
        times: usize,
    },
    /// `file`'s body is sent complete per its (wrong, shorter) `Content-Length`: the first
    /// half of the file, announced as such.
    ShortBody {
        /// The file name.
        file: String,
    },
    /// `file`'s body has the right length and one flipped byte.
    WrongBytes {
        /// The file name.
        file: String,
    },
}

struct File {
    bytes: Vec<u8>,
    /// The sha256 for LFS files (served through the content host), else a git-like id.
    etag: String,
    lfs: bool,
}

struct RepoState {
    sha: String,
    files: Vec<(String, File)>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, RepoState>,
    aliases: HashMap<String, String>,
    faults: Vec<Fault>,
    requests: Vec<Request>,
}

/// A fake Hub serving repositories added with [`FakeHub::add_repo`]; stops when dropped.
pub struct FakeHub {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FakeHub {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let st = Arc::clone(&st);
                        std::thread::spawn(move || serve(stream, port, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The server's address, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds (or replaces) a repository; `.safetensors` and `.bin` files are LFS files. Returns
    /// its commit.
    pub fn add_repo(&self, id: &str, files: Vec<(String, Vec<u8>)>) -> String {
        let mut all = Sha256::new();
        let files: Vec<(String, File)> = files
            .into_iter()
            .map(|(name, bytes)| {
                let sha = hex(&Sha256::digest(&bytes));
                all.update(name.as_bytes());
                all.update(sha.as_bytes());
                let lfs = name.ends_with(".safetensors") || name.ends_with(".bin");
                let etag = if lfs { sha } else { sha[..40].to_string() };
                (name, File { bytes, etag, lfs })
            })
            .collect();
        let sha = hex(&all.finalize())[..40].to_string();
        self.lock().repos.insert(
            id.to_string(),
            RepoState {
                sha: sha.clone(),
                files,
            },
        );
        sha
    }

    /// Makes `from` a renamed repository: its URLs answer a relative 307 to `to`'s.
    pub fn alias(&self, from: &str, to: &str) {
        self.lock().aliases.insert(from.into(), to.into());
    }

    /// Applies `fault` from now on (faults accumulate; [`FakeHub::heal`] clears them).
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Clears all faults.
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response to write.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many body bytes.
    cut: Option<usize>,
}

impl Reply {
    fn status(status: u16, code: &str) -> Self {
        let mut headers = vec![];
        if !code.is_empty() {
            headers.push(("X-Error-Code".to_string(), code.to_string()));
        }
        Self {
            status,
            headers,
            body: format!("{{\"error\":\"{code}\"}}").into_bytes(),
            cut: None,
        }
    }
}

fn serve(stream: TcpStream, port: u16, state: &Mutex<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let line = line.trim().to_string();
    let request = Request {
        line: line.split(' ').take(2).collect::<Vec<_>>().join(" "),
        headers,
    };
    let reply = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.requests.push(request.clone());
        answer(&mut st, &request, port)
    };
    write_reply(stream, reply);
}

fn write_reply(mut stream: TcpStream, r: Reply) {
    let reason = match r.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let body = match r.cut {
        Some(n) => &r.body[..n.min(r.body.len())],
        None => &r.body[..],
    };
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// `bytes=a-` or `bytes=a-b` as `(a, b)`, inclusive.
fn range(header: Option<&String>, len: usize) -> Option<(usize, usize)> {
    let spec = header?.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: usize = a.parse().ok()?;
    let b = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<usize>().ok()?.min(len.checked_sub(1)?)
    };
    (a <= b).then_some((a, b))
}

fn answer(st: &mut State, req: &Request, port: u16) -> Reply {
    if let Some(Fault::Status(s)) = st.faults.iter().find(|f| matches!(f, Fault::Status(_))) {
        return Reply::status(*s, "");
    }
    let path = req.line.split(' ').nth(1).unwrap_or("").to_string();
    // The content host: /cdn/<sha256>.
    if let Some(sha) = path.strip_prefix("/cdn/") {
        let found = st
            .repos
            .values()
            .flat_map(|r| r.files.iter())
            .find(|(_, f)| f.etag == sha)
            .map(|(n, f)| (n.clone(), f.bytes.clone()));
        return match found {
            Some((name, bytes)) => content(st, req, &name, bytes),
            None => Reply::status(404, "EntryNotFound"),
        };
    }
    // The model-info API: /api/models/<id>/revision/<rev>.
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((id, rev)) = rest.split_once("/revision/") else {
            return Reply::status(404, "");
        };
        if let Some(to) = st.aliases.get(id) {
            return redirect(307, &format!("/api/models/{to}/revision/{rev}"));
        }
        let Some(repo) = st.repos.get(id) else {
            return Reply::status(401, "RepoNotFound");
        };
        if rev != "main" && rev != repo.sha {
            return Reply::status(404, "RevisionNotFound");
        }
        let siblings: Vec<serde_json::Value> = repo
            .files
            .iter()
            .map(|(n, _)| serde_json::json!({ "rfilename": n }))
            .collect();
        let body = serde_json::json!({ "id": id, "sha": repo.sha, "siblings": siblings });
        return Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            cut: None,
        };
    }
    // /<id>/resolve/<rev>/<file>, where <id> is one or two parts.
    let Some((id, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return Reply::status(404, "");
    };
    let Some((rev, file)) = rest.split_once('/') else {
        return Reply::status(404, "");
    };
    if let Some(to) = st.aliases.get(id) {
        return redirect(307, &format!("/{to}/resolve/{rev}/{file}"));
    }
    let Some(repo) = st.repos.get(id) else {
        return Reply::status(401, "RepoNotFound");
    };
    if rev != "main" && rev != repo.sha {
        return Reply::status(404, "RevisionNotFound");
    }
    let Some((name, f)) = repo.files.iter().find(|(n, _)| n == file) else {
        return Reply::status(404, "EntryNotFound");
    };
    let commit = ("X-Repo-Commit".to_string(), repo.sha.clone());
    if f.lfs {
        let mut r = redirect(302, &format!("http://127.0.0.1:{port}/cdn/{}", f.etag));
        r.headers
            .push(("X-Linked-Etag".into(), format!("\"{}\"", f.etag)));
        r.headers
            .push(("X-Linked-Size".into(), f.bytes.len().to_string()));
        r.headers.push(commit);
        return r;
    }
    let (etag, name, bytes) = (f.etag.clone(), name.clone(), f.bytes.clone());
    let mut r = content(st, req, &name, bytes);
    r.headers.push(("ETag".into(), format!("\"{etag}\"")));
    r.headers.push(commit);
    r
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Location".into(), location.into())],
        body: vec![],
        cut: None,
    }
}

/// A file's bytes, honouring Range and the faults that apply to downloads of it (requests for
/// more than the 1-byte probe `hf-hub` sends first).
fn content(st: &mut State, req: &Request, name: &str, bytes: Vec<u8>) -> Reply {
    let total = bytes.len();
    let (a, b) = match range(req.headers.get("range"), total) {
        Some(r) => r,
        None => (0, total.saturating_sub(1)),
    };
    let mut body = if total == 0 {
        vec![]
    } else {
        bytes[a..=b].to_vec()
    };
    let mut cut = None;
    if b > a {
        for fault in st.faults.iter_mut() {
            match fault {
                Fault::ShortBody { file } if file == name => body.truncate(body.len() / 2),
                Fault::WrongBytes { file } if file == name => {
                    let mid = body.len() / 2;
                    body[mid] ^= 0xff;
                }
                Fault::DropAfter { file, bytes, times } if file == name && *times > 0 => {
                    *times -= 1;
                    cut = Some(*bytes);
                }
                _ => {}
            }
        }
    }
    let mut headers = vec![("Content-Type".into(), "application/octet-stream".into())];
    let status = if req.headers.contains_key("range") && total > 0 {
        let last = a + body.len().max(1) - 1;
        headers.push(("Content-Range".into(), format!("bytes {a}-{last}/{total}")));
        206
    } else {
        200
    };
    Reply {
        status,
        headers,
        body,
        cut,
    }
}
