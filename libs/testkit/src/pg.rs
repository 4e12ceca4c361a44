//! A PostgreSQL cluster of one test's own, for tests that restart the
//! server (the shared test cluster must keep running for the others).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `initdb` in a temporary directory, started on a free port, with the
/// project's roles and a migrated `aiagents` database. Stopped on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
}

fn as_pg_user(program: &Path) -> Command {
    // PostgreSQL refuses to run as root; the test stack runs it as `nobody`.
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--"]).arg(program);
        // PostgreSQL (15 and older) finds its binaries by changing into
        // their directory and back: back must be a directory `nobody` may
        // enter, which a checkout under /root is not.
        command.current_dir("/");
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A temporary directory the server's user owns.
fn cluster_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("aiagents-pg-")
        .tempdir()
        .expect("temporary directory");
    if is_root() {
        run(
            Command::new("chown").args(["nobody"]).arg(dir.path()),
            "chown the cluster directory",
        );
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One URL naming every server in `clusters`, in order, for `role`, that
/// connects only to the one taking writes (`target_session_attrs=read-write`):
/// what services are given for a primary with a standby.
pub fn failover_url(role: &str, clusters: &[&PgCluster]) -> String {
    let hosts = clusters
        .iter()
        .map(|cluster| format!("127.0.0.1:{}", cluster.port))
        .collect::<Vec<_>>()
        .join(",");
    format!("postgres://{role}@{hosts}/aiagents?target_session_attrs=read-write")
}

impl PgCluster {
    pub async fn start() -> Self {
        let bindir = PathBuf::from(aia_config::optional("PG_BINDIR").expect(
            "AI_AGENTS_PG_BINDIR is not set: run the tests with `./dev test`, which installs PostgreSQL",
        ));
        let dir = cluster_dir();
        let port = free_port();
        run(
            as_pg_user(&bindir.join("initdb"))
                .arg("-D")
                .arg(dir.path().join("data"))
                .args(["-U", "aiagents", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            "initdb",
        );
        let cluster = Self { dir, bindir, port };
        cluster.start_server();
        let (client, connection) = tokio_postgres::connect(
            &format!("postgres://aiagents@127.0.0.1:{port}/postgres"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the private cluster");
        tokio::spawn(connection);
        for statement in [
            "create database aiagents",
            "create role aiagents_app login",
            "create role aiagents_admin login",
        ] {
            client.batch_execute(statement).await.expect(statement);
        }
        let (mut owner, connection) =
            tokio_postgres::connect(&cluster.owner_url(), tokio_postgres::NoTls)
                .await
                .expect("connect as owner");
        tokio::spawn(connection);
        aia_store::migrate::run(&mut owner)
            .await
            .expect("migrations");
        cluster
    }

    fn start_server(&self) {
        run(
            as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
                    self.port,
                    self.dir.path().display()
                ))
                .args(["-w", "start"]),
            "pg_ctl start",
        );
    }

    fn stop_server(&self, mode: &str) {
        run(
            as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", mode, "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    /// A synchronous streaming standby of this cluster (`pg_basebackup
    /// -R`: it follows the primary's WAL and is read-only until promoted),
    /// started on a port of its own. Once it streams, the primary commits
    /// only what the standby has flushed (`synchronous_standby_names`), so a
    /// failover loses no acknowledged commit — what a projection whose
    /// events are acknowledged after commit needs.
    pub async fn standby(&self) -> Self {
        let dir = cluster_dir();
        let port = free_port();
        run(
            as_pg_user(&self.bindir.join("pg_basebackup"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "aiagents", "-D"])
                .arg(dir.path().join("data"))
                .args(["-R", "-X", "stream", "--no-sync", "-c", "fast"]),
            "pg_basebackup",
        );
        let standby = Self {
            dir,
            bindir: self.bindir.clone(),
            port,
        };
        standby.start_server();
        let (primary, connection) =
            tokio_postgres::connect(&self.owner_url(), tokio_postgres::NoTls)
                .await
                .expect("connect to the primary");
        tokio::spawn(connection);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let streaming: i64 = primary
                .query_one(
                    "select count(*) from pg_stat_replication where state = 'streaming'",
                    &[],
                )
                .await
                .expect("read pg_stat_replication")
                .get(0);
            if streaming > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the standby did not stream within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Two statements, two round trips: a multi-statement batch is one
        // implicit transaction, and ALTER SYSTEM refuses to run in one.
        for statement in [
            "alter system set synchronous_standby_names = '*'",
            "select pg_reload_conf()",
        ] {
            primary
                .batch_execute(statement)
                .await
                .expect("make the standby synchronous");
        }
        // Commits wait for the standby only once it reports as synchronous.
        loop {
            let sync: i64 = primary
                .query_one(
                    "select count(*) from pg_stat_replication where sync_state = 'sync'",
                    &[],
                )
                .await
                .expect("read pg_stat_replication")
                .get(0);
            if sync > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the standby did not become synchronous within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        standby
    }

    /// Kills the server as a crash would (`pg_ctl -m immediate`).
    pub fn kill(&self) {
        self.stop_server("immediate");
    }

    /// Promotes a standby: it leaves recovery and takes writes.
    pub fn promote(&self) {
        run(
            as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-w", "promote"]),
            "pg_ctl promote",
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast: connections are cut) and starts it again on
    /// the same port with the same data.
    pub fn restart(&self) {
        self.stop_server("fast");
        self.start_server();
    }

    /// The schema owner (a superuser here).
    pub fn owner_url(&self) -> String {
        format!("postgres://aiagents@127.0.0.1:{}/aiagents", self.port)
    }

    /// The application role, under row-level security.
    pub fn app_url(&self) -> String {
        format!("postgres://aiagents_app@127.0.0.1:{}/aiagents", self.port)
    }

    /// The admin role, which reads every tenant.
    pub fn admin_read_url(&self) -> String {
        format!("postgres://aiagents_admin@127.0.0.1:{}/aiagents", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_pg_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
