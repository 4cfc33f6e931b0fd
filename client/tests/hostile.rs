//! A host using the client carelessly: a socket path that holds no memlink daemon. Each
//! ends with an error that says what was wrong, or is served as documented.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use memlink_client::Client;

/// A path with no memlink daemon behind it is named for what it is, at once: a file or a
/// directory is no socket (no daemon ever replaces it, so there is nothing to wait for),
/// and a socket whose answer is no memlink answer is not a memlink daemon. Before, each
/// was tried again for the whole reconnect timeout and reported as "Connection refused"
/// or "a frame of 1347703880 bytes".
#[test]
fn a_path_without_a_memlink_daemon_is_named_for_what_it_is_at_once() {
    let dir = common::scratch_dir();
    let file = dir.join("file");
    std::fs::write(&file, b"not a socket").unwrap();
    for (path, what) in [(&file, "is a regular file"), (&dir, "is a directory")] {
        let t = Instant::now();
        let err = Client::connect(path).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let text = err.to_string();
        assert!(
            text.contains(what) && text.contains("not a socket"),
            "{text}"
        );
    }

    let http = dir.join("http.sock");
    let listener = UnixListener::bind(&http).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let t = Instant::now();
    let err = Client::connect(&http).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let text = err.to_string();
    assert!(
        text.contains("does not answer as a memlink daemon"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
