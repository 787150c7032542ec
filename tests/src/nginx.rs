//! nginx as the benchmarks' anchor: Debian's build run as our own single process on a loopback
//! port with a generated configuration, storing `PUT /upload/<name>` bodies on disk (WebDAV)
//! and serving files from its root with `sendfile`.
//!
//! Install it with `apt-get install -y nginx-light` (or `nginx`); `NGINX_BIN` names another
//! binary. The process is killed and its directory removed when the [`Nginx`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running nginx.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Nginx {
    /// Starts nginx with its root and temp files under `parent` (so on the same disk as what it
    /// is compared with); panics with nginx's error log when it does not start.
    pub async fn start(parent: &Path) -> Self {
        let binary = std::env::var("NGINX_BIN").unwrap_or_else(|_| "/usr/sbin/nginx".to_owned());
        let dir = parent.join(format!("nginx-{}", uuid::Uuid::new_v4().simple()));
        for sub in ["root/upload", "tmp", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).expect("creating nginx's directories");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let d = dir.display();
        // One process (no master): it serves one stream at a time as a worker would, and runs
        // as us, so it can write where we can.
        let config = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
               client_max_body_size 0;\n  client_body_buffer_size 1m;\n\
               client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
               fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {d}/root;\n\
                 location /upload/ {{ dav_methods PUT; create_full_put_path on; }}\n  }}\n}}\n"
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("writing nginx.conf");
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {binary} ({error}); install it: apt-get install -y nginx-light"
                )
            });
        let nginx = Self {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(nginx.dir.join("logs/error.log")).unwrap_or_default()
        );
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The directory nginx serves `GET /<name>` from.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The process id, to read its memory from `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
