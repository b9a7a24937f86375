//! `dask scheduler` serves its dashboard and prints where.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the process when dropped, so the test leaves none behind.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_scheduler_process_prints_and_serves_its_dashboard() {
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_dask"))
            .args(["scheduler", "--port", "0", "--dashboard-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the dask binary"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("scheduler at 127.0.0.1:"), "{first:?}");
    let second = lines.next().unwrap().unwrap();
    let addr = second
        .strip_prefix("dashboard at http://")
        .and_then(|s| s.strip_suffix("/status"))
        .unwrap_or_else(|| panic!("unexpected output {second:?}"))
        .to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
}
